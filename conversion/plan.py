"""Deterministic splits and shards, decided on the driver from paths alone.

A file's split depends only on the hash of its relative path, so reruns agree and adding
files moves no existing file. Shards are filled in hash order, each record going to the shard
with the fewest bytes so far, so every shard is non-empty and sizes stay balanced; records are
ordered within a shard by a second, seeded hash.
"""

from __future__ import annotations

import hashlib
import heapq
from dataclasses import dataclass

from conversion.discovery import Candidate
from conversion.options import ImageConvertOptions
from conversion.tfrecord_io import COMPRESSIONS


def stable_hash(key: str, salt: str) -> int:
    """A 64-bit hash of `key` that is the same on every machine and Python run."""
    return int.from_bytes(hashlib.sha256(f"{salt}\0{key}".encode("utf-8")).digest()[:8], "big")


@dataclass(frozen=True)
class FileTask:
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
        return f"{self.split}-{self.index:05d}-of-{self.num_shards:05d}.tfrecord{COMPRESSIONS[self.compression]}"


def assign_split(relpath: str, splits: tuple[tuple[str, float], ...]) -> str:
    """The split of one file: its hash as a fraction in [0, 1) against the cumulative fractions."""
    position = stable_hash(relpath, "split") / 2.0**64
    cumulative = 0.0
    for name, fraction in splits:
        cumulative += fraction
        if position < cumulative:
            return name
    return splits[-1][0]


def _fill_shards(files: list[FileTask], num_shards: int) -> list[list[FileTask]]:
    shards: list[list[FileTask]] = [[] for _ in range(num_shards)]
    heap = [(0, index) for index in range(num_shards)]  # (bytes so far, shard index)
    for task in sorted(files, key=lambda t: (stable_hash(t.relpath, "shard"), t.relpath)):
        size, index = heapq.heappop(heap)
        shards[index].append(task)
        heapq.heappush(heap, (size + max(task.size, 0), index))
    return shards


def plan_shards(
    candidates: tuple[Candidate, ...], labels: tuple[str, ...], options: ImageConvertOptions
) -> list[ShardPlan]:
    """Split the candidates and cut every split into shards."""
    label_ids = {label: i for i, label in enumerate(labels)}
    by_split: dict[str, list[FileTask]] = {}
    for c in candidates:
        split = c.split if c.split is not None else assign_split(c.relpath, options.splits)
        by_split.setdefault(split, []).append(FileTask(c.relpath, c.size, label_ids[c.label]))
    plans = []
    for split in sorted(by_split):
        files = by_split[split]
        num_shards = options.shards_for(len(files), sum(max(t.size, 0) for t in files))
        for index, shard in enumerate(_fill_shards(files, num_shards)):
            ordered = sorted(shard, key=lambda t: (stable_hash(t.relpath, f"order{options.seed}"), t.relpath))
            plans.append(ShardPlan(split, index, num_shards, tuple(ordered), options.compression))
    return plans
