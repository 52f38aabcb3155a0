"""The columnar listing, discovery and plan decide exactly what the per-file rules decide.

`reference_*` below are the rules as they were written before the plan became columns (a Python object
per file): the columnar code must agree with them on every path, split, shard, order and skip reason,
including the awkward paths (hidden folders, case and dots in extensions, Unicode and control characters
in labels, unknown sizes, seeds, fixed labels, split folders).
"""

from __future__ import annotations

import hashlib
import heapq
import pickle
import random
import unicodedata

import pytest

from conversion.images.discovery import discover
from conversion.images.options import ImageConvertOptions
from conversion.images.plan import PathKeys, ShardFiles, group_into_tasks, path_hashes, plan_shards
from conversion.images.task_plans import TaskPlan, remove_task_plans, write_task_plans
from conversion.splits import split_bounds, split_of
from dataset.features import has_image_extension, is_hidden
from dataset.fs import ListedFile
from dataset.listing import Listing

# --------------------------------------------------------------------------- the per-file rules


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
        elif not has_image_extension(f.relpath):
            skipped.append((f.relpath, "unsupported_extension", "not .jpg .jpeg .png .gif .bmp .webp"))
        elif split_from_folders:
            candidates.append((f.relpath, f.size, parts[1], parts[0]))
        else:
            candidates.append((f.relpath, f.size, parts[0], None))
    by_form: dict[str, list[str]] = {}
    for label in sorted({c[2] for c in candidates}):
        by_form.setdefault(unicodedata.normalize("NFC", label), []).append(label)
    refused = {}
    for form, names in by_form.items():
        keep = form if form in names else names[0]
        for name in names:
            if name != keep:
                refused[name] = (
                    "ambiguous_label_name",
                    f"label folder {name!r} differs from {keep!r} only in Unicode normalization; rename one of them",
                )
        for name in names:
            bad = ", ".join(f"U+{ord(ch):04X}" for ch in name if unicodedata.category(ch) == "Cc")
            if bad:
                refused[name] = ("bad_label_name", f"label folder {name!r} holds control characters ({bad}); rename it")
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
    """[(split, index, num_shards, [(relpath, size, label_id), ...]), ...]"""
    label_ids = {label: i for i, label in enumerate(labels)}
    by_split: dict[str, list] = {}
    bounds = split_bounds(options.splits)
    for relpath, size, label, folder_split in candidates:
        split_key, shard_key, order_key = path_hashes(relpath, options.seed)
        split = folder_split if folder_split is not None else split_of(split_key, options.splits, bounds)
        by_split.setdefault(split, []).append((shard_key, order_key, relpath, (relpath, size, label_ids[label])))
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


# --------------------------------------------------------------------------- awkward listings

NAMES = ["a", "b", "c d", "é", "e\u0301", "tab\there", "new\nline", "Z", "ünï", "日本", "x.y", "_u", "-", "a!b", "a.b"]
LEAVES = ["x.png", "y.JPG", "z.JpEg", "w.webp", "v.GIF", "u.bmp", "t.txt", "s.png.txt", ".h.png", "r", "q.", "p..png"]
LEAVES += ["o.PnG", "n.jpeg ", "m.jpg/", "ℹ.png", "l.tiff", "K.jpg", "k.\u212ag", "j.pnġ", "i.jpe"]


def awkward_listing(rng: random.Random, n: int, split_folders: bool = False) -> list[ListedFile]:
    files: dict[str, ListedFile] = {}
    while len(files) < n:
        parts = [rng.choice(NAMES)]
        if split_folders:
            parts.insert(0, rng.choice(["train", "test", "val", ".x"]))
        parts += [rng.choice(["sub", ".hid", "deep/er", "é"]) for _ in range(rng.choice([0, 0, 0, 1, 2]))]
        parts.append(f"{rng.randrange(10**6)}{rng.choice(LEAVES)}")
        relpath = "/".join(parts[rng.choice([0, 0, 0, 0, 1]) :]) if len(parts) > 1 else parts[0]
        relpath = relpath.rstrip("/") or "top.png"
        roll = rng.random()
        if roll < 0.02:
            files[relpath] = ListedFile(relpath, -1, "not_a_regular_file", "a FIFO, not a regular file: not read")
        elif roll < 0.04:
            files[relpath] = ListedFile(relpath, -1)
        else:
            files[relpath] = ListedFile(relpath, rng.choice([0, 1, 1000, 1000, rng.randrange(10**6)]))
    listed = list(files.values())
    rng.shuffle(listed)
    return listed


def columnar(files, labels=None, split_from_folders=False, **options):
    found = discover(files, labels, split_from_folders)
    opts = ImageConvertOptions("in", "out", split_from_folders=split_from_folders, **options)
    plans = plan_shards(found.candidates, found.labels, opts)
    skips = [(s.relpath, s.reason, s.detail) for s in found.skipped]
    return found, [(p.split, p.index, p.num_shards, [tuple(f) for f in p.files]) for p in plans], skips


@pytest.mark.parametrize("seed", range(6))
def test_columnar_discovery_and_plan_match_the_per_file_rules(seed):
    rng = random.Random(seed)
    files = awkward_listing(rng, 3000, split_folders=seed >= 4)
    split_from_folders = seed >= 4
    labels = ("b", "a", "é", "日本", "nowhere") if seed == 3 else None
    options = {"num_shards": rng.choice([None, 1, 3, 7])}
    if not split_from_folders:
        options["splits"] = rng.choice(
            [
                (("train", 0.8), ("validation", 0.1), ("test", 0.1)),
                (("all", 1.0),),
                (("a", 0.5), ("b", 0.0), ("c", 0.5)),
            ]
        )
    if options["num_shards"] is None:
        options["target_shard_mb"] = 0.05
    shard_seed = rng.choice([0, 0, 7])

    found, plans, skips = columnar(files, labels, split_from_folders, seed=shard_seed, **options)
    candidates, ref_skips, ref_labels = reference_discover(files, labels, split_from_folders)
    assert found.labels == ref_labels and found.num_files_seen == len(files)
    assert skips == ref_skips
    assert [tuple(c) for c in found.candidates] == sorted(candidates)
    opts = ImageConvertOptions("in", "out", split_from_folders=split_from_folders, seed=shard_seed, **options)
    assert plans == reference_plan(candidates, found.labels, opts)
    assert {reason for _, reason, _ in skips} >= {
        "hidden",
        "unsupported_extension",
        "not_a_regular_file",
        "bad_label_name",
    }


def test_equal_hashes_fall_back_to_path_order(monkeypatch):
    # No two paths share a 64-bit hash in practice: force the ties by giving every file one shard and order hash.
    files = [ListedFile(f"a/{i}.png", 10) for i in range(50)]
    found = discover(files)
    keys = PathKeys.of(found.candidates.relpaths)
    keys.shard[:] = 5
    keys.order[:] = 9
    monkeypatch.setattr(PathKeys, "of", classmethod(lambda cls, relpaths, seed=0: keys))
    options = ImageConvertOptions("in", "out", splits=(("train", 1.0),), num_shards=3)
    plans = plan_shards(found.candidates, found.labels, options)
    paths = sorted(f.relpath for f in files)
    assert [[f.relpath for f in p.files] for p in plans] == [paths[0::3], paths[1::3], paths[2::3]]


def test_listing_sorts_by_code_point_and_keeps_the_last_of_a_path_listed_twice():
    files = [ListedFile("b/é.png", 1), ListedFile("b/z.png", 2), ListedFile("a/x.png", 3), ListedFile("b/z.png", 4)]
    files.append(ListedFile("b/\U0001f600.png", 5, "not_a_regular_file", "a socket"))
    listing = Listing.of(files)
    assert list(listing) == [
        ListedFile("a/x.png", 3),
        ListedFile("b/z.png", 4),
        ListedFile("b/é.png", 1),
        ListedFile("b/\U0001f600.png", 5, "not_a_regular_file", "a socket"),
    ]


def test_a_shard_pickles_only_its_own_files_and_reads_back_equal(tmp_path):
    found = discover([ListedFile(f"l{i % 3}/{i:06d}.jpg", 1000 + i) for i in range(30_000)])
    plans = plan_shards(found.candidates, found.labels, ImageConvertOptions("in", "out", num_shards=10))
    one = plans[0]
    assert isinstance(one.files, ShardFiles) and len(one.files) < 1000
    assert len(pickle.dumps(one)) < 60 * len(one.files)  # its rows only, not the 30,000 of the table it views
    assert pickle.loads(pickle.dumps(one)) == one

    tasks = group_into_tasks(plans, 4)
    refs = write_task_plans(tasks, str(tmp_path))
    assert [len(pickle.dumps(ref)) < 400 for ref in refs] == [True] * 4
    assert [list(ref) for ref in refs] == [list(task) for task in tasks]
    assert [ref.num_files for ref in refs] == [sum(len(p.files) for p in task) for task in tasks]
    assert pickle.loads(pickle.dumps(refs[0])) == refs[0] and isinstance(refs[0], TaskPlan)
    remove_task_plans(str(tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_sha256_rows_match_path_hashes():
    paths = ["a/x.png", "é/ü.jpg", "日本/1.png", ""]
    for seed in (0, 3):
        keys = PathKeys.of(Listing.of([ListedFile(p, 1) for p in paths]).relpaths, seed)
        ordered = sorted(paths)
        assert [(int(a), int(b), int(c)) for a, b, c in zip(keys.split, keys.shard, keys.order)] == [
            path_hashes(p, seed) for p in ordered
        ]
        assert int(keys.split[ordered.index("a/x.png")]) == int.from_bytes(
            hashlib.sha256(b"a/x.png").digest()[:8], "big"
        )
