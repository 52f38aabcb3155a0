"""Per-column statistics computed by Spark, stored in the manifest for training's preprocessing.

The moments, extremes and counts are computed on the pass that counts the rows
(`conversion.tables.survey`, each partition with Arrow: `conversion.tables.partials`) over the rows
selected (the statistics split), with the string vocabularies. The
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
