"""The file index of a version: one row per source file the version has seen, in a Parquet file beside the manifest.

    run-<time>-<hex>/_files.parquet    written by the run that committed the version; `Manifest.file_index` names it

Columns (`SCHEMA`), sorted by `relpath`, no path twice:

    relpath  large_string  the file's path relative to the input root
    size     int64         its size in bytes (-1: unknown)
    stamp    string        what else identifies its content: mtime in ns (local), ETag (object stores); null: unknown
    split    string        the split its record went to (null: no record)
    shard    string        the dataset-relative shard that holds its record (null: none, or a table's many)
    status   string        "written" | "rejected" | "skipped"
    reason   string        why it was rejected or skipped (null when written)

An append compares a listing with the index (`compare`: new, changed, deleted, unchanged; vectorised, cheap at a
million rows), converts what is new and writes `merge(old, new)` for the next version. It is not in
`manifest.json`: a million rows would make every reader of the manifest parse tens of megabytes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dataset.errors import DatasetError
from dataset.layout import DatasetFolder
from dataset.listing import Listing
from dataset.manifest import Manifest

INDEX_FILE = "_files.parquet"
WRITTEN, REJECTED, SKIPPED = "written", "rejected", "skipped"
STATUSES = (WRITTEN, REJECTED, SKIPPED)
SCHEMA = pa.schema(
    [
        ("relpath", pa.large_string()),
        ("size", pa.int64()),
        ("stamp", pa.string()),
        ("split", pa.string()),
        ("shard", pa.string()),
        ("status", pa.string()),
        ("reason", pa.string()),
    ]
)


@dataclass(frozen=True, eq=False)
class FileIndex:
    """The rows of a file index as one Arrow table (`SCHEMA`), sorted by relpath, no relpath twice."""

    table: pa.Table

    def __len__(self) -> int:
        return self.table.num_rows

    def column(self, name: str) -> pa.Array:
        return self.table.column(name).combine_chunks()

    @property
    def relpaths(self) -> pa.LargeStringArray:
        return self.column("relpath")

    @classmethod
    def empty(cls) -> FileIndex:
        return cls(SCHEMA.empty_table())

    @classmethod
    def of(
        cls,
        relpaths: Sequence[str] | pa.Array,
        sizes: Sequence[int] | np.ndarray,
        stamps: Sequence[str | None] | pa.Array | None = None,
        splits: Sequence[str | None] | pa.Array | None = None,
        shards: Sequence[str | None] | pa.Array | None = None,
        statuses: Sequence[str] | pa.Array | str = WRITTEN,
        reasons: Sequence[str | None] | pa.Array | None = None,
    ) -> FileIndex:
        """An index of these columns (any order; of a relpath given twice the last row is kept). A column left
        out is null; `statuses` may be one status for every row."""
        n = len(relpaths)
        nulls = pa.nulls(n, pa.string())
        if isinstance(statuses, str):
            statuses = pa.array([statuses] * n, pa.string())
        columns = [
            _as(relpaths, pa.large_string()),
            pa.array(np.asarray(sizes, dtype=np.int64)),
            *(nulls if c is None else _as(c, pa.string()) for c in (stamps, splits, shards, statuses, reasons)),
        ]
        return _unique_sorted(pa.Table.from_arrays(columns, schema=SCHEMA))

    def status_counts(self) -> dict[str, int]:
        return dict(Counter(self.column("status").to_pylist()))

    def num_written(self) -> int:
        return int(pc.sum(pc.equal(self.column("status"), WRITTEN)).as_py() or 0)

    def reasons(self) -> dict[str, int]:
        """Files not written, counted by reason (what `Manifest.num_rejected` holds)."""
        not_written = pc.not_equal(self.column("status"), WRITTEN)
        return dict(sorted(Counter(self.column("reason").filter(not_written).to_pylist()).items()))

    def take(self, rows: np.ndarray) -> FileIndex:
        """Rows `rows` (ascending) alone."""
        return FileIndex(self.table.take(pa.array(rows, pa.int64())))

    def drop(self, rows: np.ndarray) -> FileIndex:
        """Every row but `rows`."""
        keep = np.ones(len(self), dtype=bool)
        keep[rows] = False
        return FileIndex(self.table.filter(pa.array(keep)))


def _as(values: Sequence | pa.Array, kind: pa.DataType) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return values.cast(kind) if isinstance(values, pa.Array) else pa.array(values, kind)


def _unique_sorted(table: pa.Table) -> FileIndex:
    """`table` sorted by relpath (stable), of equal relpaths the last row kept."""
    if table.num_rows < 2:
        return FileIndex(table)
    order = pc.sort_indices(table, sort_keys=[("relpath", "ascending")])  # stable
    table = table.take(order)
    paths = table.column("relpath").combine_chunks()
    last = np.ones(len(paths), dtype=bool)
    last[:-1] = pc.not_equal(paths[:-1], paths[1:]).to_numpy(zero_copy_only=False)
    return FileIndex(table if last.all() else table.filter(pa.array(last)))


def index_path(run: str) -> str:
    """The dataset-relative path of the index written by run folder `run`."""
    return f"{run}/{INDEX_FILE}"


def write_index(data_url: str, run: str, index: FileIndex) -> str:
    """Write `index` into run folder `run` of the dataset at `data_url`; its dataset-relative path (for
    `Manifest.file_index`). The bytes depend on the rows alone."""
    folder = DatasetFolder(data_url)
    relpath = index_path(run)
    fs, path = folder.fs, folder.path(relpath)
    codec = "zstd" if pa.Codec.is_available("zstd") else "snappy"
    with fs.open(path, "wb") as out:
        pq.write_table(index.table, out, compression=codec)
    return relpath


def read_index(data_url: str, manifest: Manifest) -> FileIndex | None:
    """The file index `manifest` names (None: it names none, e.g. a version written before indexes).

    Raises:
        DatasetError: the file is missing (vacuumed?) or not an index.
    """
    if manifest.file_index is None:
        return None
    folder = DatasetFolder(data_url)
    try:
        with folder.fs.open(folder.path(manifest.file_index), "rb") as raw:
            table = pq.read_table(raw)
    except FileNotFoundError as err:
        raise DatasetError(
            f"the file index {manifest.file_index} of {data_url} is missing; roll back to a version that has it"
        ) from err
    except (pa.ArrowInvalid, OSError) as err:
        raise DatasetError(f"the file index {manifest.file_index} of {data_url} is unreadable: {err}") from err
    if not table.schema.equals(SCHEMA):
        raise DatasetError(f"the file index {manifest.file_index} of {data_url} has columns {table.schema.names}")
    return FileIndex(table)


@dataclass(frozen=True, eq=False)
class IndexComparison:
    """A listing against an index. Listing rows (ascending): `new`, `changed`, `unchanged`; `changed_at` and
    `unchanged_at` are the index rows of the same files; `deleted` are index rows (under the listed prefix) that
    the listing lacks."""

    new: np.ndarray
    changed: np.ndarray
    changed_at: np.ndarray
    unchanged: np.ndarray
    unchanged_at: np.ndarray
    deleted: np.ndarray


def compare(listing: Listing, index: FileIndex, prefixes: tuple[str, ...] | None = None) -> IndexComparison:
    """Which listed files are new, changed or unchanged against `index`, and which indexed files are gone.

    A file is changed when its size or its stamp differs; an unknown size (-1) or stamp (null) on either side
    is no difference. With `prefixes` (folders relative to the input root) the listing covers only those folders,
    so only index rows under them can be deleted.
    """
    at = pc.index_in(listing.relpaths, value_set=index.relpaths)
    found = at.is_valid().to_numpy(zero_copy_only=False)
    new = np.flatnonzero(~found)
    listed = np.flatnonzero(found)
    rows = at.filter(at.is_valid()).to_numpy(zero_copy_only=False).astype(np.int64)
    sizes = index.column("size").to_numpy(zero_copy_only=False)[rows]
    mine = listing.sizes[listed]
    differs = (sizes >= 0) & (mine >= 0) & (sizes != mine)
    if listing.stamps is not None and len(rows):
        theirs = index.column("stamp").take(pa.array(rows))
        ours = listing.stamps.take(pa.array(listed))
        differs |= pc.fill_null(pc.not_equal(ours, theirs), False).to_numpy(zero_copy_only=False)
    gone = np.ones(len(index), dtype=bool)  # index rows no listed file matched (one hash table, not two)
    gone[rows] = False
    if prefixes is not None:
        under = np.zeros(len(index), dtype=bool)
        for prefix in prefixes:
            under |= pc.starts_with(index.relpaths, prefix.strip("/") + "/").to_numpy(zero_copy_only=False)
        gone &= under
    return IndexComparison(
        new=new,
        changed=listed[differs],
        changed_at=rows[differs],
        unchanged=listed[~differs],
        unchanged_at=rows[~differs],
        deleted=np.flatnonzero(gone),
    )


def merge(old: FileIndex, new: FileIndex) -> FileIndex:
    """`old`'s rows and `new`'s, sorted; of a relpath in both, `new`'s row."""
    if not len(old):
        return new
    if not len(new):
        return old
    return _unique_sorted(pa.concat_tables([old.table, new.table]))


def remap_shards(index: FileIndex, moved: Mapping[str, str]) -> FileIndex:
    """`index` with every shard path that `moved` names replaced by its new path (compaction, rewrites)."""
    if not moved:
        return index
    shards = index.column("shard")
    at = pc.index_in(shards, value_set=pa.array(list(moved), pa.string()))
    replaced = pa.array(list(moved.values()), pa.string()).take(at)
    column = pc.if_else(at.is_valid(), replaced, shards)
    return FileIndex(index.table.set_column(SCHEMA.get_field_index("shard"), "shard", column))
