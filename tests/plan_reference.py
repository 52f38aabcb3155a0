"""The conversion's planning rules as they were written before the plan became columns: a Python object per file.

The reference that `tests/test_plan_columns.py` holds the columnar code to (same candidates, skips, splits, shards
and order), and the baseline of `benchmarks/planning_scale.py`. The refusal of label names works on the distinct
names, not per file, and is shared (`conversion.images.discovery._refused_labels`).
"""

from __future__ import annotations

import heapq

from conversion.images.discovery import _refused_labels
from conversion.images.formats import extensions_text, has_convertible_extension
from conversion.images.plan import FileTask, path_hashes
from conversion.splits import split_bounds, split_of
from dataset.features import is_hidden


def reference_discover(files, labels=None, split_from_folders=False):
    """(candidates as (relpath, size, label, split), skips as (relpath, reason, detail) sorted, labels)."""
    depth = 3 if split_from_folders else 2
    candidates, skipped = [], []
    for f in files:
        parts = f.relpath.split("/")
        if f.problem:
            skipped.append((f.relpath, f.problem, f.detail))
        elif is_hidden(f.relpath):
            skipped.append((f.relpath, "hidden", "hidden file or folder"))
        elif len(parts) < depth:
            where = "ROOT/<split>/<label>/" if split_from_folders else "ROOT/<label>/"
            skipped.append((f.relpath, "outside_label_folder", f"not under {where}"))
        elif not has_convertible_extension(f.relpath):
            skipped.append((f.relpath, "unsupported_extension", f"not one of {extensions_text()}"))
        elif split_from_folders:
            candidates.append((f.relpath, f.size, parts[1], parts[0]))
        else:
            candidates.append((f.relpath, f.size, parts[0], None))
    refused = _refused_labels(c[2] for c in candidates)  # per label folder, not per file: shared
    skipped += [(c[0], *refused[c[2]]) for c in candidates if c[2] in refused]
    candidates = [c for c in candidates if c[2] not in refused]
    if labels is None:
        labels = tuple(sorted({c[2] for c in candidates}))
    else:
        skipped += [
            (c[0], "unknown_label", f"label folder {c[2]!r} is not in --labels")
            for c in candidates
            if c[2] not in labels
        ]
        candidates = [c for c in candidates if c[2] in labels]
    return candidates, sorted(skipped), labels


def reference_plan(candidates, labels, options):
    """[(split, index, num_shards, [FileTask, ...]), ...]"""
    label_ids = {label: i for i, label in enumerate(labels)}
    by_split: dict[str, list] = {}
    bounds = split_bounds(options.splits)
    for relpath, size, label, folder_split in candidates:
        split_key, shard_key, order_key = path_hashes(relpath, options.seed)
        split = folder_split if folder_split is not None else split_of(split_key, options.splits, bounds)
        by_split.setdefault(split, []).append(
            (shard_key, order_key, relpath, FileTask(relpath, size, label_ids[label]))
        )
    plans = []
    for split in sorted(by_split):
        files = by_split[split]
        num_shards = options.shards_for(len(files), sum(max(k[3][1], 0) for k in files))
        shards: list[list] = [[] for _ in range(num_shards)]
        heap = [(0, index) for index in range(num_shards)]
        for keyed in sorted(files, key=lambda k: (k[0], k[2])):
            load, index = heapq.heappop(heap)
            shards[index].append(keyed)
            heapq.heappush(heap, (load + max(keyed[3][1], 0), index))
        for index, shard in enumerate(shards):
            plans.append((split, index, num_shards, [k[3] for k in sorted(shard, key=lambda k: (k[1], k[2]))]))
    return plans


def reference_group(plans, num_tasks):
    """`group_into_tasks` over `reference_plan`'s shards: largest first onto the least-loaded task."""
    tasks = [[] for _ in range(max(1, min(num_tasks, len(plans))))]
    heap = [(0, index) for index in range(len(tasks))]
    for plan in sorted(plans, key=lambda p: (-sum(max(f[1], 0) for f in p[3]), p[0], p[1])):
        load, index = heapq.heappop(heap)
        tasks[index].append(plan)
        heapq.heappush(heap, (load + sum(max(f[1], 0) for f in plan[3]) + 1, index))
    return [tuple(task) for task in tasks]
