"""The survey's per-partition counts and moments, computed with Arrow in the Python worker.

Spark hands each partition to `SurveyPartials` as Arrow batches of the columns `SurveyLayout` names (row
groups, flags, numeric values as doubles, string values, null flags). The partition's rows are counted per group,
per string value and per (label, split), vectorised, and its numeric moments, absent values and selected rows go
out as one JSON row; Spark sums the counts over partitions and `merge_moments` folds the moments, in partition
order. Against the 190-odd aggregates Spark would observe for 30 columns, this costs a fraction of the CPU and no
generated code to compile (a fresh 2,000,000-row x 30-column job: its survey stage 11.8-12.9 s instead of 22.3 s).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.accumulators import AccumulatorParam

from conversion.tables.quantiles import PartitionSample, in_level

COUNTS = -1  # the `kind` of a group's row (reason, split, bucket); a string column's values have its index
FILES = -2  # the `kind` of a (file, rows) pair: rows read per input file (the file index of appends)
LABELS = -3  # the `kind` of a (label text, split) pair
MOMENTS = -4  # the `kind` of a partition's moments, absent counts and selected rows (JSON in `value`)
SCHEMA = "kind int, value string, reason string, split string, bucket long, count long"
_OUT = pa.schema(
    [
        ("kind", pa.int32()),
        ("value", pa.string()),
        ("reason", pa.string()),
        ("split", pa.string()),
        ("bucket", pa.int64()),
        ("count", pa.int64()),
    ]
)
_GROUP = ("reason", "split", "bucket")


@dataclass(frozen=True)
class SurveyLayout:
    """What the input batches hold, in order: the row's reason, split and bucket, whether it is selected and
    written; its file, then its label text and split, then whether it is labelled, each when counted; one double
    per numeric column (`floats[i]`: a float column, whose NaN and infinities are counted apart); one value per
    string column; one null flag per other column; with `sample_cap`, the row's quantile sample hash last
    (`conversion.tables.quantiles`). By position: Spark names the columns after their expressions."""

    floats: tuple[bool, ...]
    strings: int
    others: int
    file: bool
    label: bool
    sample_cap: int = 0  # the most sampled rows a partition keeps (0: no quantile sample)
    labelled: bool = False  # a flag column after the label's: its true rows are counted (the summary's "labelled")

    def positions(self) -> dict[str, list[int]]:
        """The batch's column positions by role."""
        at = 5 + self.file + 2 * self.label + self.labelled
        numeric = list(range(at, at + len(self.floats)))
        strings = list(range(at + len(self.floats), at + len(self.floats) + self.strings))
        start = at + len(self.floats) + self.strings
        return {
            "file": [5] if self.file else [],
            "label": [5 + self.file, 6 + self.file] if self.label else [],
            "labelled": [5 + self.file + 2 * self.label] if self.labelled else [],
            "numeric": numeric,
            "strings": strings,
            "others": list(range(start, start + self.others)),
            "sample": [start + self.others] if self.sample_cap else [],
        }


@dataclass(frozen=True)
class SurveyPartials:
    """`mapInArrow`'s function: a partition's batches in, its partial counts out (schema SCHEMA); its quantile
    sample (with `layout.sample_cap`) added to `samples`, an accumulator of `PartitionResults`."""

    layout: SurveyLayout
    samples: Any = None

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pyspark import TaskContext

        layout = self.layout
        counted = _Pending()  # kind → the rows to count (value, reason, split, bucket), grouped a few batches at once
        moments = [_Moments() for _ in layout.floats]
        absent = [0] * (len(layout.floats) + layout.strings + layout.others)
        selected_rows = 0
        labelled_rows = 0
        at = layout.positions()
        sample = PartitionSample(layout.sample_cap, len(layout.floats)) if layout.sample_cap else None
        for batch in batches:
            columns = batch.columns
            selected = pc.fill_null(columns[3], False)
            written = pc.fill_null(columns[4], False)
            selected_rows += pc.sum(selected).as_py() or 0
            for i in at["labelled"]:
                labelled_rows += pc.sum(columns[i]).as_py() or 0
            groups = pa.table(dict(zip(_GROUP, columns[:3])))
            counted.add(COUNTS, groups)
            for i in at["file"]:
                counted.add(FILES, pa.table({"value": columns[i]}))
            if at["label"]:
                text, split = (columns[i] for i in at["label"])
                pairs = pa.table({"value": text, "split": split}).filter(pc.is_valid(text))
                counted.add(LABELS, pairs)
            for kind, i in enumerate(at["strings"]):
                values = pc.filter(columns[i], selected).drop_null()
                counted.add(kind, pa.table({"value": values}))
            mask = selected.to_numpy(zero_copy_only=False)
            numbers = [columns[i].to_numpy(zero_copy_only=False) for i in at["numeric"]]  # nulls as NaN
            for moments_of, i, values, is_float in zip(moments, at["numeric"], numbers, layout.floats):
                moments_of.add(values, columns[i], mask, is_float)
            if sample is not None:
                hashes = columns[at["sample"][0]].to_numpy(zero_copy_only=False)
                keep = mask & in_level(hashes, sample.level)
                if keep.any():
                    sample.add(hashes[keep], np.column_stack([_finite(values[keep]) for values in numbers]))
            for n, i in enumerate(at["numeric"] + at["strings"]):
                absent[n] += pc.filter(columns[i], written).null_count
            for n, i in enumerate(at["others"], len(at["numeric"]) + len(at["strings"])):
                absent[n] += pc.sum(pc.filter(columns[i], written)).as_py() or 0
        context = TaskContext.get()
        partition = context.partitionId() if context else 0
        if sample is not None:
            self.samples.add({partition: sample.result()})
        summary = {
            "partition": partition,
            "selected": selected_rows,
            "labelled": labelled_rows,
            "absent": absent,
            "moments": [m.state() for m in moments],
        }
        out = [_summed(kind, tables) for kind, tables in sorted(counted.counts().items())]
        out.append(_rows(MOMENTS, pa.table({"value": [json.dumps(summary)], "count": pa.array([1], pa.int64())})))
        for table in out:
            yield from table.cast(_OUT).to_batches()


class PartitionResults(AccumulatorParam):
    """An accumulator's values by partition: a partition computed again (a retried task) replaces its own."""

    def zero(self, value: dict) -> dict:
        return {}

    def addInPlace(self, value1: dict, value2: dict) -> dict:  # noqa: N802  (pyspark's name)
        value1.update(value2)
        return value1


def _finite(values: np.ndarray) -> np.ndarray:
    """A numeric column's values (nulls as NaN), NaN where null, NaN or infinite."""
    return np.where(np.isfinite(values), values, np.nan)


def _counts(table: pa.Table, keys: list[str]) -> pa.Table:
    """Rows per distinct `keys` (null a key value of its own)."""
    ones = pa.array(np.ones(table.num_rows, dtype=np.int64))
    return _grouped(table.append_column("count", ones), keys)


def _grouped(table: pa.Table, keys: list[str]) -> pa.Table:
    """`table`'s `count` summed per distinct `keys`. Grouped on each key without its nulls and a flag of them:
    pyarrow 14 splits the groups of a key that holds nulls before another key (8,224 groups of 24 in 10,000 rows),
    later versions do not."""
    if not table.num_rows:
        return table
    columns: dict[str, pa.ChunkedArray] = {}
    for key in keys:
        column = table[key]
        columns[key] = pc.fill_null(column, pa.scalar("" if pa.types.is_string(column.type) else 0, column.type))
        columns[f"{key}|null"] = pc.is_null(column)
    flagged = [name for key in keys for name in (key, f"{key}|null")]
    grouped = pa.table({**columns, "count": table["count"]}).group_by(flagged, use_threads=False)
    summed = grouped.aggregate([("count", "sum")]).rename_columns([*flagged, "count"])
    restored = {key: pc.if_else(summed[f"{key}|null"], pa.scalar(None, summed[key].type), summed[key]) for key in keys}
    return pa.table({**restored, "count": summed["count"]})


class _Pending:
    """Rows to count per kind, grouped once GROUP_ROWS of a kind have come or at the partition's end (what it holds is
    bounded so): a group-by per 10,000-row batch was 44 % of a partition's Python time (250,000 rows, 30 columns,
    warm: 0.25 s a partition, now 0.17 s; the counts the same)."""

    GROUP_ROWS = 1 << 18

    def __init__(self) -> None:
        self._rows: dict[int, list[pa.Table]] = {}
        self._counted: dict[int, list[pa.Table]] = {}

    def add(self, kind: int, table: pa.Table) -> None:
        rows = self._rows.setdefault(kind, [])
        rows.append(table)
        if sum(t.num_rows for t in rows) >= self.GROUP_ROWS:
            self._group(kind)

    def _group(self, kind: int) -> None:
        table = pa.concat_tables(self._rows.pop(kind))
        self._counted.setdefault(kind, []).append(_counts(table, table.column_names))

    def counts(self) -> dict[int, list[pa.Table]]:
        """Per kind, its partial counts (value, reason, split, bucket, count) so far, every row grouped."""
        for kind in list(self._rows):
            self._group(kind)
        return self._counted


def _summed(kind: int, tables: list[pa.Table]) -> pa.Table:
    """A kind's partial counts over the partition's batches, as output rows."""
    table = pa.concat_tables(tables)
    return _rows(kind, _grouped(table, [name for name in table.column_names if name != "count"]))


def _rows(kind: int, table: pa.Table) -> pa.Table:
    """`table`'s columns as the output schema's (the missing ones null) with `kind`."""
    n = table.num_rows
    columns = {"kind": pa.array(np.full(n, kind, dtype=np.int32))}
    for field in _OUT:
        if field.name != "kind":
            columns[field.name] = table[field.name] if field.name in table.column_names else pa.nulls(n, field.type)
    return pa.table(columns)


class _Moments:
    """One numeric column's finite selected values so far: count, sum, mean and sum of squared deviations, extremes,
    NaN and infinite counts; groups of values (a batch, a partition) folded in by Chan's formula."""

    def __init__(self) -> None:
        self.count, self.total, self.mean, self.m2 = 0, 0.0, 0.0, 0.0
        self.low: float | None = None
        self.high: float | None = None
        self.nan = self.inf = 0

    def add(self, values: np.ndarray, column: pa.Array, selected: np.ndarray, is_float: bool) -> None:
        """Fold in a batch's selected values of the column (`values`: the column as numpy, nulls as NaN, dropped
        here by the column's validity)."""
        mask = selected & column.is_valid().to_numpy(zero_copy_only=False) if column.null_count else selected
        values = values[mask]
        nan = inf = 0
        if is_float:
            nans, infs = np.isnan(values), np.isinf(values)
            nan, inf = int(nans.sum()), int(infs.sum())
            values = values[~(nans | infs)]
        if not len(values):
            self.fold([0, 0.0, 0.0, 0.0, None, None, nan, inf])
            return
        mean = float(values.mean())
        m2 = float(((values - mean) ** 2).sum())
        self.fold([len(values), float(values.sum()), mean, m2, float(values.min()), float(values.max()), nan, inf])

    def fold(self, state: list) -> None:
        """Fold in another group's `state()`."""
        count, total, mean, m2, low, high, nan, inf = state
        self.nan += nan
        self.inf += inf
        if not count:
            return
        n = self.count + count
        delta = mean - self.mean
        self.m2 += m2 + delta * delta * self.count * count / n
        self.mean += delta * count / n
        self.count = n
        self.total += total
        self.low = low if self.low is None else min(self.low, low)
        self.high = high if self.high is None else max(self.high, high)

    def state(self) -> list:
        return [self.count, self.total, self.mean, self.m2, self.low, self.high, self.nan, self.inf]


def merge_moments(partitions: list[dict], names: list[str]) -> tuple[dict[str, object], int, list[int]]:
    """The partitions' summaries (in partition order) as Spark's aggregates would name them (`<column>|count`,
    `|sum`, `|stddev` (sample; null under 2 values), `|min`, `|max`, `|nan_count`, `|inf_count`), the selected
    rows, and the absent counts per column (in the layout's order)."""
    merged = [_Moments() for _ in names]
    absent: list[int] = []
    selected = 0
    for part in sorted(partitions, key=lambda p: p["partition"]):
        selected += part["selected"]
        absent = [a + b for a, b in zip(absent, part["absent"])] if absent else list(part["absent"])
        for into, state in zip(merged, part["moments"]):
            into.fold(state)
    values: dict[str, object] = {}
    for name, m in zip(names, merged):
        values.update(
            {
                f"{name}|count": m.count,
                f"{name}|sum": m.total if m.count else None,
                f"{name}|stddev": math.sqrt(m.m2 / (m.count - 1)) if m.count > 1 else None,
                f"{name}|min": m.low,
                f"{name}|max": m.high,
                f"{name}|nan_count": m.nan,
                f"{name}|inf_count": m.inf,
            }
        )
    return values, selected, absent
