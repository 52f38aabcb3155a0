"""Deterministic splits and shards, decided on the driver from paths alone.

A file's split follows the one split rule (`conversion.splits`) on its relative path, so
reruns agree and adding files moves no existing file. Shards are filled in hash order, each record going to the shard
with the fewest bytes so far, so every shard is non-empty and sizes stay balanced; records are
ordered within a shard by a second, seeded hash.
"""

from __future__ import annotations

import hashlib
import heapq
from dataclasses import dataclass
from typing import NamedTuple

from conversion.images.discovery import Candidate
from conversion.images.options import ImageConvertOptions
from conversion.splits import split_bounds, split_of
from dataset.layout import shard_file_name


def stable_hash(key: str, salt: str) -> int:
    """A 64-bit hash of `key` that is the same on every machine and Python run."""
    return int.from_bytes(hashlib.sha256(f"{salt}\0{key}".encode("utf-8")).digest()[:8], "big")


def path_hashes(relpath: str, seed: int = 0) -> tuple[int, int, int]:
    """Three independent 64-bit hashes of a path from one SHA-256: (split, shard, order).

    The first is `conversion.splits.split_position(relpath)`; computing all three from one
    digest saves two SHA-256 per file.
    """
    digest = hashlib.sha256(relpath.encode("utf-8")).digest()
    order = int.from_bytes(digest[16:24], "big")
    if seed:
        order = stable_hash(relpath, f"order{seed}")
    return int.from_bytes(digest[:8], "big"), int.from_bytes(digest[8:16], "big"), order


class FileTask(NamedTuple):  # a NamedTuple: built and pickled per file, so kept cheap
    relpath: str
    size: int
    label_id: int


@dataclass(frozen=True)
class ShardPlan:
    """One output file: which inputs go in it, in write order."""

    split: str
    index: int
    num_shards: int
    files: tuple[FileTask, ...]
    compression: str = "none"

    @property
    def name(self) -> str:
        return shard_file_name(self.split, self.index, self.num_shards, self.compression)


Keyed = tuple[int, int, str, FileTask]  # (shard hash, order hash, path, task): sorts by hash, then path


def _fill_shards(files: list[Keyed], num_shards: int) -> list[list[Keyed]]:
    shards: list[list[Keyed]] = [[] for _ in range(num_shards)]
    heap = [(0, index) for index in range(num_shards)]  # (bytes so far, shard index)
    for keyed in sorted(files, key=lambda k: (k[0], k[2])):
        size, index = heapq.heappop(heap)
        shards[index].append(keyed)
        heapq.heappush(heap, (size + max(keyed[3].size, 0), index))
    return shards


def plan_shards(
    candidates: tuple[Candidate, ...], labels: tuple[str, ...], options: ImageConvertOptions
) -> list[ShardPlan]:
    """Split the candidates and cut every split into shards."""
    label_ids = {label: i for i, label in enumerate(labels)}
    by_split: dict[str, list[Keyed]] = {}
    bounds = split_bounds(options.splits)
    for c in candidates:
        split_key, shard_key, order_key = path_hashes(c.relpath, options.seed)
        split = c.split if c.split is not None else split_of(split_key, options.splits, bounds)
        task = FileTask(c.relpath, c.size, label_ids[c.label])
        by_split.setdefault(split, []).append((shard_key, order_key, c.relpath, task))
    plans = []
    for split in sorted(by_split):
        files = by_split[split]
        num_shards = options.shards_for(len(files), sum(max(k[3].size, 0) for k in files))
        for index, shard in enumerate(_fill_shards(files, num_shards)):
            ordered = tuple(k[3] for k in sorted(shard, key=lambda k: (k[1], k[2])))
            plans.append(ShardPlan(split, index, num_shards, ordered, options.compression))
    return plans


def group_into_tasks(plans: list[ShardPlan], num_tasks: int) -> list[tuple[ShardPlan, ...]]:
    """Spread shards over `num_tasks` Spark tasks, largest first onto the least-loaded task.

    Each Python task costs Spark tens of milliseconds however small it is, so a few tasks per
    core, each writing several shards, beat one task per shard on many small files.
    """
    tasks: list[list[ShardPlan]] = [[] for _ in range(max(1, min(num_tasks, len(plans))))]
    heap = [(0, index) for index in range(len(tasks))]
    for plan in sorted(plans, key=lambda p: (-sum(max(f.size, 0) for f in p.files), p.split, p.index)):
        load, index = heapq.heappop(heap)
        tasks[index].append(plan)
        heapq.heappush(heap, (load + sum(max(f.size, 0) for f in plan.files) + 1, index))
    return [tuple(task) for task in tasks]
