"""Per-column statistics computed by Spark, stored in the manifest for training's preprocessing.

The moments, extremes and counts are computed on the pass that counts the rows
(`conversion.tables.survey`) as aggregates over the rows `selected` (the statistics split), the
string vocabularies as (column, value) pairs that the pass counts with its other groups. The
quantile boundaries are observed on the write pass (`conversion.tables.convert`), when the
statistics split's row count is known, over a deterministic sample of about
`--quantile-sample-rows` of its rows (all of them in a smaller split): `percentile_approx` costs
more than every other statistic together (on 500,000 rows x 22 numeric columns, 4.9 s of task
CPU against 0.7 s for reading and hashing the rows), and its own accuracy is 1/1000 anyway.
"""

from __future__ import annotations

import json
import math
from typing import Any

from pyspark.sql import Column
from pyspark.sql import functions as F

from conversion.tables.schema import ColumnSpec

QUANTILE_ACCURACY = 1000  # percentile_approx's accuracy: a relative rank error of 1/1000


def quantile_sample_every(rows: int, sample_rows: int) -> int:
    """k: the quantiles of a split of `rows` rows are computed from 1 row in k (1: all of them)."""
    return max(1, math.ceil(rows / sample_rows))


def in_quantile_sample(row_hash: Column, every: int) -> Column:
    """Whether a row (by its 64-bit hash) is in the 1-in-`every` sample: the same rows on every run."""
    return F.lit(True) if every == 1 else F.pmod(F.xxhash64(row_hash, F.lit("quantiles")), F.lit(every)) == 0


def numeric_columns(columns: list[ColumnSpec]) -> list[ColumnSpec]:
    return [c for c in columns if not c.is_list and c.dtype in ("int64", "float32")]


def string_columns(columns: list[ColumnSpec]) -> list[ColumnSpec]:
    return [c for c in columns if not c.is_list and c.dtype == "string" and not c.is_binary]


def _raw(column: ColumnSpec) -> Column:
    """The column's record value as a double: a date or timestamp as its number (days, microseconds)."""
    return column.value().cast("double")


def _finite(spec: ColumnSpec) -> Column:
    column = _raw(spec)
    if spec.dtype != "float32":
        return column
    return F.when(F.isnan(column) | (F.abs(column) == float("inf")), None).otherwise(column)


def _count_if(condition: Column) -> Column:
    return F.sum(F.when(condition, 1).otherwise(0).cast("long"))


SELECTED = "_tfrecordpipe_selected"  # whether a row is in the statistics (the `selected` condition, evaluated once)
FINITE = "_tfrecordpipe_finite_"  # + a numeric column's index: its finite values in the selected rows, else null


def statistic_inputs(columns: list[ColumnSpec], selected: Column) -> dict[str, Column]:
    """The columns `aggregates` read, to add before they are observed: `selected` and each numeric column's finite
    selected values computed once per row in generated code, not once per aggregate inside the observation."""
    inputs = {SELECTED: selected}
    inputs.update({f"{FINITE}{i}": F.when(selected, _finite(c)) for i, c in enumerate(numeric_columns(columns))})
    return inputs


SELECTED_ROWS = "_tfrecordpipe_selected_rows"  # the observed count of the selected rows (the null counts follow)


def aggregates(columns: list[ColumnSpec]) -> list[Column]:
    """The statistics of the selected rows (over `statistic_inputs`' columns), as aggregates named
    `<column>|<statistic>`, and the count of the selected rows, named SELECTED_ROWS.

    Numeric: count (non-null, finite), sum, stddev (sample), min, max, nan_count and inf_count; the null_count
    follows (`add_null_counts`): every selected row is null, NaN, infinite or counted. Strings: their null_count
    follows from the count of their values, which the survey's vocabulary counts give.
    """
    out = []
    selected = F.col(SELECTED)
    for i, c in enumerate(numeric_columns(columns)):
        is_float = c.dtype == "float32"
        finite = F.col(f"{FINITE}{i}")  # null (skipped) outside the selection
        raw = _raw(c)
        out += [
            F.count(finite).alias(f"{c.name}|count"),
            F.sum(finite).alias(f"{c.name}|sum"),
            F.stddev_samp(finite).alias(f"{c.name}|stddev"),
            F.min(finite).alias(f"{c.name}|min"),
            F.max(finite).alias(f"{c.name}|max"),
            (_count_if(selected & F.isnan(raw)) if is_float else F.lit(0)).alias(f"{c.name}|nan_count"),
            (_count_if(selected & (F.abs(raw) == float("inf"))) if is_float else F.lit(0)).alias(f"{c.name}|inf_count"),
        ]
    return [*out, _count_if(selected).alias(SELECTED_ROWS)]


def add_null_counts(
    stats: dict[str, dict], columns: list[ColumnSpec], selected_rows: int, string_values: dict[str, int]
) -> None:
    """Add each scalar column's null_count of the selected rows to `stats` (from `from_aggregates`): the selected
    rows less a numeric column's counted, NaN and infinite values, less a string column's non-null values
    (`string_values`, by column name)."""
    for c in numeric_columns(columns):
        values = stats[c.name]
        values["null_count"] = selected_rows - values["count"] - values["nan_count"] - values["inf_count"]
    for c in string_columns(columns):
        stats.setdefault(c.name, {})["null_count"] = selected_rows - string_values.get(c.name, 0)


QUANTILE_INPUT = "_tfrecordpipe_quantile_"  # + a numeric column's index: its values the quantiles are computed from


def quantile_inputs(columns: list[ColumnSpec], selected: Column) -> dict[str, Column]:
    """Per numeric column, its finite values where `selected` holds (null elsewhere), as columns to add before the
    `quantile_aggregates` are observed: `percentile_approx` evaluates its input row by row through Spark's
    expression interpreter, a projection runs in generated code (on 2,000,000 rows, the interpreted hash of the
    sample test took about a tenth of the conversion's CPU)."""
    return {f"{QUANTILE_INPUT}{i}": F.when(selected, _finite(c)) for i, c in enumerate(numeric_columns(columns))}


def quantile_aggregates(columns: list[ColumnSpec], num_quantiles: int) -> list[Column]:
    """The `num_quantiles`-quantile boundaries (as JSON) of each numeric column's `quantile_inputs` column,
    named `<column>|boundaries`."""
    probabilities = [i / num_quantiles for i in range(1, num_quantiles)]
    return [
        F.to_json(F.percentile_approx(F.col(f"{QUANTILE_INPUT}{i}"), probabilities, QUANTILE_ACCURACY)).alias(
            f"{c.name}|boundaries"
        )
        for i, c in enumerate(numeric_columns(columns))
    ]


ABSENT = "absent"  # the statistic: rows written without the column's feature (its value is null)


def absent_aggregates(columns: list[ColumnSpec], written: Column) -> list[Column]:
    """Per column (lists too), the rows where `written` holds and the value is null, named `<column>|absent`:
    the records that will leave the feature out (every split, not only the statistics split)."""
    return [_count_if(written & F.col(f"`{c.name}`").isNull()).alias(f"{c.name}|{ABSENT}") for c in columns]


def from_aggregates(values: dict[str, Any]) -> dict[str, dict]:
    """`aggregates`' and `quantile_aggregates`' results as statistics per column (mean from sum and
    count, sorted distinct boundaries)."""
    stats: dict[str, dict] = {}
    for key, value in values.items():
        name, stat = key.rsplit("|", 1)
        stats.setdefault(name, {})[stat] = value if value is None or isinstance(value, (float, str)) else int(value)
    for column in stats.values():
        if "sum" in column:
            total = column.pop("sum")
            column["mean"] = total / column["count"] if column["count"] else None  # Spark's avg: sum / count
        if "boundaries" in column:
            boundaries = column.pop("boundaries")
            column["boundaries"] = sorted(set(json.loads(boundaries))) if boundaries else []
    return stats
