"""Per-column statistics computed by Spark, stored in the manifest for training's preprocessing.

The moments, extremes and counts are computed on the pass that counts the rows
(`conversion.tables.survey`, each partition with Arrow: `conversion.tables.partials`) over the rows
selected (the statistics split), with the string vocabularies and a hash sample of the numeric values,
whose exact quantiles are the quantile boundaries (`conversion.tables.quantiles`): about
`--quantile-sample-rows` of the split's rows (all of them in a smaller split), the same rows on every run.
"""

from __future__ import annotations

from typing import Any

from conversion.tables.schema import ColumnSpec


def numeric_columns(columns: list[ColumnSpec]) -> list[ColumnSpec]:
    return [c for c in columns if not c.is_list and c.dtype in ("int64", "float32")]


def string_columns(columns: list[ColumnSpec]) -> list[ColumnSpec]:
    return [c for c in columns if not c.is_list and c.dtype == "string" and not c.is_binary]


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


def from_aggregates(values: dict[str, Any]) -> dict[str, dict]:
    """Aggregates named `<column>|<statistic>` as statistics per column (the mean from sum and count)."""
    stats: dict[str, dict] = {}
    for key, value in values.items():
        name, stat = key.rsplit("|", 1)
        stats.setdefault(name, {})[stat] = value if value is None or isinstance(value, (float, str)) else int(value)
    for column in stats.values():
        if "sum" in column:
            total = column.pop("sum")
            column["mean"] = total / column["count"] if column["count"] else None  # Spark's avg: sum / count
    return stats
