"""Deterministic splits and shards, decided on the driver from paths alone.

A file's split follows the one split rule (`conversion.splits`) on its relative path, so
reruns agree and adding files moves no existing file. Shards are filled in hash order, each record going to the shard
with the fewest bytes so far, so every shard is non-empty and sizes stay balanced; records are
ordered within a shard by a second, seeded hash.

The plan is columns (`FileTable`, numpy sorts): a shard's files are row numbers into the candidates' columns,
not an object per file.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple, overload

import numpy as np
import pyarrow as pa

from conversion.images.discovery import Candidates
from conversion.images.options import ImageConvertOptions
from conversion.splits import Splits, split_bounds
from dataset.layout import shard_file_name
from dataset.listing import CHUNK

U64_END = 2**64


def stable_hash(key: str, salt: str) -> int:
    """A 64-bit hash of `key` that is the same on every machine and Python run."""
    return int.from_bytes(hashlib.sha256(f"{salt}\0{key}".encode("utf-8")).digest()[:8], "big")


def path_hashes(relpath: str, seed: int = 0) -> tuple[int, int, int]:
    """Three independent 64-bit hashes of a path from one SHA-256: (split, shard, order).

    The first is `conversion.splits.split_position(relpath)`; computing all three from one
    digest saves two SHA-256 per file. `PathKeys.of` computes the same for a column of paths.
    """
    digest = hashlib.sha256(relpath.encode("utf-8")).digest()
    order = int.from_bytes(digest[16:24], "big")
    if seed:
        order = stable_hash(relpath, f"order{seed}")
    return int.from_bytes(digest[:8], "big"), int.from_bytes(digest[8:16], "big"), order


@dataclass(frozen=True, eq=False)
class PathKeys:
    """`path_hashes` of every row of a path column: the split (as an index into the splits asked for), the shard
    and the order hash (uint64)."""

    split: np.ndarray | None  # int16; None when no splits were asked for (split folders)
    shard: np.ndarray
    order: np.ndarray

    @classmethod
    def of(cls, relpaths: pa.Array, seed: int = 0, splits: Splits | None = None) -> PathKeys:
        split = np.empty(len(relpaths), dtype=np.int16) if splits else None
        shard, order = np.empty(len(relpaths), dtype=np.uint64), np.empty(len(relpaths), dtype=np.uint64)
        sha256 = hashlib.sha256
        salt = f"order{seed}\0".encode()
        for start in range(0, len(relpaths), CHUNK):
            paths = _utf8(relpaths[start : start + CHUNK])
            rows = slice(start, start + len(paths))
            digests = np.frombuffer(b"".join([sha256(p).digest() for p in paths]), dtype=">u8").reshape(-1, 4)
            if split is not None and splits:
                split[rows] = split_codes(digests[:, 0], splits)
            shard[rows], order[rows] = digests[:, 1], digests[:, 2]
            if seed:
                order[rows] = np.frombuffer(b"".join([sha256(salt + p).digest()[:8] for p in paths]), dtype=">u8")
        return cls(split, shard, order)


def _utf8(relpaths: pa.Array) -> list[bytes]:
    """Each path's UTF-8 bytes, cut from the column's data buffer (three times faster than `to_pylist`)."""
    relpaths = relpaths.cast(pa.large_string())
    if relpaths.null_count:
        raise ValueError("a path column holds nulls")
    offsets = np.frombuffer(relpaths.buffers()[1], dtype=np.int64)[
        relpaths.offset : relpaths.offset + len(relpaths) + 1
    ]
    if not len(relpaths):
        return []
    first = int(offsets[0])
    data = relpaths.buffers()[2][first : int(offsets[-1])].to_pybytes()
    bounds = (offsets - first).tolist()
    return list(map(data.__getitem__, map(slice, bounds[:-1], bounds[1:])))


def split_codes(positions: np.ndarray, splits: Splits) -> np.ndarray:
    """`conversion.splits.split_of` of each position, as an index into `splits` (int8... int64)."""
    finite = np.array([b for b in split_bounds(splits) if b < U64_END], dtype=np.uint64)  # a bound of 2^64 or more
    return np.minimum(np.searchsorted(finite, positions, side="right"), len(splits) - 1)  # is above every position


class FileTask(NamedTuple):
    relpath: str
    size: int
    label_id: int


@dataclass(frozen=True, eq=False)
class FileTable:
    """Files as columns; row i is `FileTask(relpaths[i], sizes[i], label_ids[i])`."""

    relpaths: pa.LargeStringArray
    sizes: np.ndarray  # int64
    label_ids: np.ndarray  # int32

    def __len__(self) -> int:
        return len(self.relpaths)

    def to_batch(self) -> pa.RecordBatch:
        return pa.record_batch([self.relpaths, pa.array(self.sizes), pa.array(self.label_ids)], schema=FILE_SCHEMA)

    @classmethod
    def from_batch(cls, batch: pa.RecordBatch) -> FileTable:
        sizes, label_ids = (batch.column(i).to_numpy(zero_copy_only=False) for i in (1, 2))
        return cls(batch.column(0), sizes, label_ids)


FILE_SCHEMA = pa.schema([("relpath", pa.large_string()), ("size", pa.int64()), ("label_id", pa.int32())])


@dataclass(frozen=True, eq=False)
class ShardFiles(Sequence[FileTask]):
    """One shard's files in write order: rows `rows` of `table`. A sequence of `FileTask`s, made as iterated;
    pickled, only its own rows go."""

    table: FileTable
    rows: np.ndarray

    @classmethod
    def of(cls, table: FileTable) -> ShardFiles:
        """All rows of `table`, in order."""
        return cls(table, np.arange(len(table)))

    def __len__(self) -> int:
        return len(self.rows)

    @overload
    def __getitem__(self, index: int) -> FileTask: ...
    @overload
    def __getitem__(self, index: slice) -> ShardFiles: ...
    def __getitem__(self, index: int | slice) -> FileTask | ShardFiles:
        if isinstance(index, slice):
            return ShardFiles(self.table, self.rows[index])
        row = int(self.rows[index])
        return FileTask(self.table.relpaths[row].as_py(), int(self.table.sizes[row]), int(self.table.label_ids[row]))

    def __iter__(self) -> Iterator[FileTask]:
        for start in range(0, len(self.rows), CHUNK):
            rows = self.rows[start : start + CHUNK]
            paths = self.table.relpaths.take(pa.array(rows)).to_pylist()
            yield from map(FileTask, paths, self.table.sizes[rows].tolist(), self.table.label_ids[rows].tolist())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ShardFiles):
            return NotImplemented
        mine, theirs = self.table_of_rows(), other.table_of_rows()
        return (
            np.array_equal(mine.sizes, theirs.sizes)
            and np.array_equal(mine.label_ids, theirs.label_ids)
            and mine.relpaths.equals(theirs.relpaths)
        )

    __hash__ = None  # type: ignore[assignment]

    @property
    def num_bytes(self) -> int:
        """The bytes the shard reads (unknown sizes, -1, count 0)."""
        return int(np.maximum(self.table.sizes[self.rows], 0).sum())

    def table_of_rows(self) -> FileTable:
        """Its rows alone, as a table of their own."""
        rows = pa.array(self.rows)
        return FileTable(self.table.relpaths.take(rows), self.table.sizes[self.rows], self.table.label_ids[self.rows])

    def __reduce__(self) -> tuple:
        return ShardFiles.of, (self.table_of_rows(),)


@dataclass(frozen=True)
class ShardPlan:
    """One output file: which inputs go in it, in write order."""

    split: str
    index: int
    num_shards: int
    files: Sequence[FileTask]  # a `ShardFiles`
    compression: str = "none"
    tag: str = ""  # appends: the run's token in the file name (`dataset.layout.shard_file_name`)

    @property
    def name(self) -> str:
        return shard_file_name(self.split, self.index, self.num_shards, self.compression, self.tag)


def _fill_shards(sizes: np.ndarray, rows: np.ndarray, num_shards: int) -> np.ndarray:
    """The shard of each of `rows`, taken in that order: the one with the fewest bytes so far (then the lowest
    index). A file of unknown size (-1) weighs 0."""
    shard_of = np.zeros(len(rows), dtype=np.int32)
    if num_shards == 1:
        return shard_of
    heap = [(0, index) for index in range(num_shards)]  # (bytes so far, shard index)
    replace = heapq.heapreplace  # pops the least-loaded shard and pushes it back with the file's bytes
    for start in range(0, len(rows), CHUNK):
        chosen: list[int] = []
        choose = chosen.append
        for size in np.maximum(sizes[rows[start : start + CHUNK]], 0).tolist():
            load, index = heap[0]
            replace(heap, (load + size, index))
            choose(index)
        shard_of[start : start + len(chosen)] = chosen
    return shard_of


def _stable_argsort(keys: np.ndarray) -> np.ndarray:
    """`np.argsort(keys, kind="stable")`, faster: a quicksort, kept unless two keys are equal (64-bit hashes of
    distinct paths practically never are; then the stable sort)."""
    order = np.argsort(keys, kind="quicksort")
    ranked = keys[order]
    return np.argsort(keys, kind="stable") if (ranked[1:] == ranked[:-1]).any() else order


def _cut(rows: np.ndarray, keys: PathKeys, sizes: np.ndarray, num_shards: int) -> tuple[np.ndarray, np.ndarray]:
    """The rows of one split in write order, and where each shard starts in it (num_shards + 1 offsets).

    `rows` are ascending, so in path order: every stable sort below breaks ties of equal hashes by path.
    """
    by_hash = _stable_argsort(keys.shard[rows])
    shard_of = np.empty(len(rows), dtype=np.int16 if num_shards <= 2**15 else np.int32)  # int16 sorts in O(n)
    shard_of[by_hash] = _fill_shards(sizes, rows[by_hash], num_shards)
    del by_hash  # the largest split's arrays are most of the plan's memory: one at a time
    ordered = rows[np.argsort(shard_of, kind="stable")]  # by shard, then path
    starts = np.zeros(num_shards + 1, dtype=np.int64)
    np.cumsum(np.bincount(shard_of, minlength=num_shards), out=starts[1:])
    for start, stop in zip(starts[:-1].tolist(), starts[1:].tolist()):  # each shard by order hash, then path
        shard = ordered[start:stop]
        ordered[start:stop] = shard[np.argsort(keys.order[shard], kind="stable")]
    return ordered, starts


def plan_shards(
    candidates: Candidates, labels: tuple[str, ...], options: ImageConvertOptions, tag: str = ""
) -> list[ShardPlan]:
    """Split the candidates and cut every split into shards (named with `tag`, if given)."""
    label_ids = {label: i for i, label in enumerate(labels)}
    to_id = np.array([label_ids[name] for name in candidates.label_names], dtype=np.int32)
    table = FileTable(candidates.relpaths, candidates.sizes, to_id[candidates.label_codes])
    by_folder = candidates.split_codes is not None
    keys = PathKeys.of(candidates.relpaths, options.seed, None if by_folder else options.splits)
    names = candidates.split_names if by_folder else tuple(name for name, _ in options.splits)
    codes = candidates.split_codes if by_folder else keys.split
    index_type = np.int32 if len(table) < 2**31 else np.int64
    plans = []
    for code in sorted(range(len(names)), key=names.__getitem__):
        rows = np.flatnonzero(codes == code).astype(index_type)
        if not len(rows):
            continue
        num_shards = options.shards_for(len(rows), int(np.maximum(table.sizes[rows], 0).sum()))
        ordered, starts = _cut(rows, keys, table.sizes, num_shards)
        del rows
        for index in range(num_shards):
            files = ShardFiles(table, ordered[starts[index] : starts[index + 1]])
            plans.append(ShardPlan(names[code], index, num_shards, files, options.compression, tag))
    return plans


def group_into_tasks(plans: list[ShardPlan], num_tasks: int) -> list[tuple[ShardPlan, ...]]:
    """Spread shards over `num_tasks` Spark tasks, largest first onto the least-loaded task.

    Each Python task costs Spark tens of milliseconds however small it is, so a few tasks per
    core, each writing several shards, beat one task per shard on many small files.
    """
    tasks: list[list[ShardPlan]] = [[] for _ in range(max(1, min(num_tasks, len(plans))))]
    heap = [(0, index) for index in range(len(tasks))]
    weight = {id(plan): _num_bytes(plan) for plan in plans}
    for plan in sorted(plans, key=lambda p: (-weight[id(p)], p.split, p.index)):
        load, index = heapq.heappop(heap)
        tasks[index].append(plan)
        heapq.heappush(heap, (load + weight[id(plan)] + 1, index))
    return [tuple(task) for task in tasks]


def _num_bytes(plan: ShardPlan) -> int:
    files = plan.files
    return files.num_bytes if isinstance(files, ShardFiles) else sum(max(f.size, 0) for f in files)


def shard_table(files: Sequence[FileTask]) -> FileTable:
    """A shard's files as a table of their own (from `ShardFiles`, or any sequence of `FileTask`s)."""
    if isinstance(files, ShardFiles):
        return files.table_of_rows()
    paths, sizes, label_ids = zip(*files) if files else ((), (), ())
    return FileTable(
        pa.array(paths, pa.large_string()), np.array(sizes, dtype=np.int64), np.array(label_ids, dtype=np.int32)
    )
