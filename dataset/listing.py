"""A listing of files as columns: relative paths in one Arrow string array, sizes in one numpy array, and what
else identifies each file's content (its stamp: mtime in ns locally, the ETag on object stores) in one Arrow
string array.

A file costs the driver the bytes of its path plus 16 (a `ListedFile` object per file costs about 200), so
millions of files fit; iterating still yields `ListedFile`s, a chunk at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

CHUNK = 65_536  # rows turned into Python objects (or back into columns) at a time


class ListedFile(NamedTuple):
    """One file under a root: its path relative to the root (posix) and its size in bytes.

    `problem` is set for an entry that must not be read: "not_a_regular_file" (a FIFO would
    block its reader forever; sockets, devices), "symlink_loop" (a folder reached again through a
    link), "unreadable_folder"; `detail` says more.
    """

    relpath: str
    size: int
    problem: str = ""
    detail: str = ""


def empty_paths() -> pa.LargeStringArray:
    return pa.array([], pa.large_string())


@dataclass(frozen=True, eq=False)
class Listing:
    """Files under a root, sorted by relative path (UTF-8 byte order, which is Python's `str` order), no path twice.

    `problems` holds the rare entries that must not be read: relative path → (problem, detail).
    """

    relpaths: pa.LargeStringArray
    sizes: np.ndarray  # int64; -1 where unknown
    problems: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    stamps: pa.StringArray | None = None  # per row: mtime_ns (local) or ETag (object stores); null where unknown

    def take(self, rows: np.ndarray) -> Listing:
        """The listing of `rows` (ascending row numbers) alone."""
        picked = pa.array(rows, pa.int64())
        paths = self.relpaths.take(picked)
        problems = {}
        if self.problems:
            wanted = set(paths.to_pylist())
            problems = {path: problem for path, problem in self.problems.items() if path in wanted}
        stamps = None if self.stamps is None else self.stamps.take(picked)
        return Listing(paths, self.sizes[rows], problems, stamps)

    def __len__(self) -> int:
        return len(self.relpaths)

    def __iter__(self) -> Iterator[ListedFile]:
        for start in range(0, len(self), CHUNK):
            paths = self.relpaths[start : start + CHUNK].to_pylist()
            for relpath, size in zip(paths, self.sizes[start : start + CHUNK].tolist()):
                problem = self.problems.get(relpath)
                yield ListedFile(relpath, size, *problem) if problem else ListedFile(relpath, size)

    @classmethod
    def of(cls, files: Iterable[ListedFile]) -> Listing:
        """The listing of `files`, in any order."""
        builder = ListingBuilder()
        for listed in files:
            builder.add(*listed)
        return builder.build()


class ListingBuilder:
    """Collects files one at a time into columns, `CHUNK` rows at a time, then sorts them into a `Listing`."""

    def __init__(self) -> None:
        self._paths: list[str] = []
        self._sizes: list[int] = []
        self._stamps: list[str | None] = []
        self._path_chunks: list[pa.Array] = []
        self._size_chunks: list[np.ndarray] = []
        self._stamp_chunks: list[pa.Array] = []
        self._stamped = False
        self._problems: dict[str, tuple[str, str]] = {}

    def add(self, relpath: str, size: int, problem: str = "", detail: str = "", stamp: str | None = None) -> None:
        self._paths.append(relpath)
        self._sizes.append(size)
        self._stamps.append(stamp)
        if stamp is not None:
            self._stamped = True
        if problem:
            self._problems[relpath] = (problem, detail)
        if len(self._paths) >= CHUNK:
            self._flush()

    def add_columns(self, relpaths: pa.Array, sizes: np.ndarray, stamps: pa.Array | None = None) -> None:
        """Add many files at once, as columns (no Python object per file); none of them has a problem."""
        self._flush()
        self._path_chunks.append(relpaths.cast(pa.large_string()))
        self._size_chunks.append(np.asarray(sizes, dtype=np.int64))
        if stamps is None:
            stamps = pa.nulls(len(relpaths), pa.string())
        elif stamps.null_count < len(stamps):
            self._stamped = True
        self._stamp_chunks.append(stamps.cast(pa.string()))

    def _flush(self) -> None:
        if self._paths:
            self._path_chunks.append(pa.array(self._paths, pa.large_string()))
            self._size_chunks.append(np.array(self._sizes, dtype=np.int64))
            self._stamp_chunks.append(pa.array(self._stamps, pa.string()))
            self._paths, self._sizes, self._stamps = [], [], []

    def build(self) -> Listing:
        """The sorted listing; of a path added twice, the last entry is kept."""
        self._flush()
        paths = pa.concat_arrays(self._path_chunks) if self._path_chunks else empty_paths()
        sizes = np.concatenate(self._size_chunks) if self._size_chunks else np.zeros(0, np.int64)
        stamps = pa.concat_arrays(self._stamp_chunks) if self._stamped and self._stamp_chunks else None
        self._path_chunks, self._size_chunks, self._stamp_chunks = [], [], []
        return sorted_listing(paths, sizes, self._problems, stamps)


def _is_sorted(paths: pa.Array) -> bool:
    return len(paths) < 2 or bool(pc.all(pc.less(paths[:-1], paths[1:])).as_py())


def sorted_listing(
    relpaths: pa.LargeStringArray,
    sizes: np.ndarray,
    problems: Mapping[str, tuple[str, str]] | None = None,
    stamps: pa.StringArray | None = None,
) -> Listing:
    """A `Listing` of these columns: sorted by path (a stable sort), and of equal paths the last kept."""
    if not _is_sorted(relpaths):
        order = pc.sort_indices(relpaths)  # stable: equal paths keep the order they were added in
        relpaths, sizes = relpaths.take(order), sizes[order.to_numpy()]
        stamps = None if stamps is None else stamps.take(order)
        if len(relpaths) > 1:
            last = np.ones(len(relpaths), dtype=bool)
            last[:-1] = pc.not_equal(relpaths[:-1], relpaths[1:]).to_numpy(zero_copy_only=False)
            if not last.all():
                keep = pa.array(last)
                relpaths, sizes = relpaths.filter(keep), sizes[last]
                stamps = None if stamps is None else stamps.filter(keep)
    return Listing(relpaths, np.ascontiguousarray(sizes, dtype=np.int64), dict(problems or {}), stamps)
