"""A table version's full value counts, kept beside its manifest so that an append merges vocabularies exactly.

The manifest keeps each string column's `--max-vocab` most frequent values; merging two such lists is not
exact (a value just below one part's cut may lead the union). Each run that commits a table version of a folder
of files writes `_stats.parquet` in its run folder, named by the manifest (`TableInfo.value_counts`, so a rollback
or a compaction that copies the manifest keeps naming it): for every string column of the statistics split, every value with its count
(rows: column, value, count), up to `VOCAB_CAP` values per column, and as metadata each column's distinct
count, whether the counts are complete, and the number of values each carried quantile boundary was computed
on (`conversion.tables.merge.boundary_rank_bound`).

A column with more than `VOCAB_CAP` distinct values keeps its `VOCAB_CAP` most frequent ones: a merged count
is then low by at most the smallest count kept (a value left out has no more), the merged distinct count is a
lower bound, and the summary says which columns are not exact.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.parquet as pq

from conversion.tables.merge import ValueCounts
from dataset.errors import DatasetError
from dataset.layout import DatasetFolder
from dataset.manifest import Manifest

SIDECAR = "_stats.parquet"  # in the run folder of the version it describes
VOCAB_CAP = 10_000  # values kept per string column
FILES = "__files__"  # the `column` of (input file, rows read) pairs: no source column has this name (reserved)
_META_KEY = b"tfrecordpipe"


@dataclass(frozen=True)
class Sidecar:
    """One version's value counts and what they cover."""

    counts: dict[str, ValueCounts]
    num_distinct: dict[str, int]
    complete: dict[str, bool]
    boundaries_count: dict[str, int] = field(default_factory=dict)  # column → values its boundaries came from
    file_rows: dict[str, int] = field(default_factory=dict)  # input file (relative path) → rows read from it
    boundaries_version: int | None = None  # the version whose conversion computed the quantile boundaries

    def to_bytes(self) -> bytes:
        rows = [(name, value, n) for name, values in sorted(self.counts.items()) for value, n in values.items()]
        rows += [(FILES, path, n) for path, n in sorted(self.file_rows.items())]
        table = pa.table(
            {
                "column": pa.array([r[0] for r in rows], pa.string()),
                "value": pa.array([r[1] for r in rows], pa.string()),
                "count": pa.array([r[2] for r in rows], pa.int64()),
            }
        )
        meta = {
            "cap": VOCAB_CAP,
            "num_distinct": self.num_distinct,
            "complete": self.complete,
            "boundaries_count": self.boundaries_count,
            "boundaries_version": self.boundaries_version,
        }
        table = table.replace_schema_metadata({_META_KEY: json.dumps(meta, sort_keys=True).encode()})
        out = io.BytesIO()
        pq.write_table(table, out)
        return out.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "Sidecar":
        table = pq.read_table(io.BytesIO(data))
        meta = json.loads(table.schema.metadata[_META_KEY])
        counts: dict[str, ValueCounts] = {name: {} for name in meta["num_distinct"]}
        files: dict[str, int] = {}
        for name, value, n in zip(*(table.column(c).to_pylist() for c in ("column", "value", "count"))):
            (files if name == FILES else counts.setdefault(name, {}))[value] = n
        return cls(
            counts,
            meta["num_distinct"],
            meta["complete"],
            meta.get("boundaries_count", {}),
            files,
            meta.get("boundaries_version"),
        )


def merged(old: Sidecar, new: Sidecar, cap: int = VOCAB_CAP) -> Sidecar:
    """The sidecar of the union, keeping `cap` values per column (boundaries carried: the old counts they were
    computed on)."""
    counts, distinct, complete = {}, {}, {}
    for name in old.counts:
        both = dict(old.counts[name])
        for value, n in new.counts.get(name, {}).items():
            both[value] = both.get(value, 0) + n
        exact = old.complete[name] and new.complete.get(name, True)
        kept = sorted(both.items(), key=lambda item: (-item[1], item[0]))[:cap]
        counts[name] = dict(kept)
        # over the cap: a lower bound (the union holds at least the larger part's distinct values)
        distinct[name] = len(both) if exact else max(len(both), old.num_distinct[name], new.num_distinct.get(name, 0))
        complete[name] = exact and len(both) <= cap
    files = {**old.file_rows, **new.file_rows}
    return Sidecar(counts, distinct, complete, dict(old.boundaries_count), files, old.boundaries_version)


def read_sidecar(data_url: str, manifest: Manifest) -> Sidecar:
    """The value counts `manifest` names (`TableInfo.value_counts`).

    Raises:
        DatasetError: it names none (a version converted before appends existed), or the file is missing or
            unreadable.
    """
    path = manifest.table.value_counts if manifest.table else None
    redo = "convert it once with --mode overwrite, then append"
    if path is None:
        raise DatasetError(f"{data_url} has no value counts (converted before appends existed); {redo}")
    folder = DatasetFolder(data_url)
    try:
        return Sidecar.from_bytes(folder.fs.cat_file(folder.path(path)))
    except FileNotFoundError:
        raise DatasetError(f"{data_url}: its value counts {path} are missing (vacuumed?); {redo}") from None
    except (OSError, KeyError, ValueError, pa.ArrowException) as err:
        raise DatasetError(f"{data_url}: its value counts {path} are unreadable ({err}); {redo}") from err


def write_sidecar(data_url: str, run: str, sidecar: Sidecar) -> str:
    """Write `sidecar` into run folder `run`; its dataset-relative path (for `TableInfo.value_counts`)."""
    folder = DatasetFolder(data_url)
    relpath = f"{run}/{SIDECAR}"
    folder.fs.pipe_file(folder.path(relpath), sidecar.to_bytes())
    return relpath
