"""Per-column statistics computed by Spark, stored in the manifest for training's preprocessing."""

from __future__ import annotations

from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from conversion.table_schema import ColumnSpec


def _finite(name: str, spark_float: bool) -> Any:
    column = F.col(f"`{name}`").cast("double")
    if not spark_float:
        return column
    return F.when(F.isnan(column) | (F.abs(column) == float("inf")), None).otherwise(column)


def column_statistics(df: DataFrame, columns: list[ColumnSpec], max_vocab: int, num_quantiles: int) -> dict[str, dict]:
    """Statistics of every scalar column of `df` (nulls as in the source).

    Numeric: count (non-null, finite), mean, stddev (sample), min, max, null_count, nan_count,
    inf_count and `num_quantiles`-quantile bucket boundaries. Strings: null_count, num_distinct
    and the `max_vocab` most frequent values with their counts (ties by value).
    """
    numeric = [c for c in columns if not c.is_list and c.dtype in ("int64", "float32")]
    strings = [c for c in columns if not c.is_list and c.dtype == "string" and not c.is_binary]
    aggregates = []
    for c in numeric:
        is_float = c.dtype == "float32"
        finite = _finite(c.name, is_float)
        raw = F.col(f"`{c.name}`").cast("double")
        aggregates += [
            F.count(finite).alias(f"{c.name}|count"), F.avg(finite).alias(f"{c.name}|mean"),
            F.stddev_samp(finite).alias(f"{c.name}|stddev"), F.min(finite).alias(f"{c.name}|min"),
            F.max(finite).alias(f"{c.name}|max"),
            F.sum(F.col(f"`{c.name}`").isNull().cast("long")).alias(f"{c.name}|null_count"),
            F.sum((F.isnan(raw) if is_float else F.lit(False)).cast("long")).alias(f"{c.name}|nan_count"),
            F.sum((F.abs(raw) == float("inf")).cast("long") if is_float else F.lit(0)).alias(f"{c.name}|inf_count"),
        ]
    for c in strings:
        aggregates += [
            F.sum(F.col(f"`{c.name}`").isNull().cast("long")).alias(f"{c.name}|null_count"),
            F.countDistinct(F.col(f"`{c.name}`")).alias(f"{c.name}|num_distinct"),
        ]
    stats: dict[str, dict] = {c.name: {} for c in numeric + strings}
    if aggregates:
        row = df.agg(*aggregates).first().asDict()
        for key, value in row.items():
            name, stat = key.rsplit("|", 1)
            stats[name][stat] = value if value is None or isinstance(value, float) else int(value)
    if numeric:
        finite_df = df.select(*[_finite(c.name, c.dtype == "float32").alias(c.name) for c in numeric])
        probabilities = [i / num_quantiles for i in range(1, num_quantiles)]
        boundaries = finite_df.approxQuantile([c.name for c in numeric], probabilities, 0.001)
        for c, values in zip(numeric, boundaries):
            stats[c.name]["boundaries"] = sorted(set(values))
    for c in strings:
        top = (df.where(F.col(f"`{c.name}`").isNotNull()).groupBy(F.col(f"`{c.name}`").alias("value")).count()
               .orderBy(F.desc("count"), F.asc("value")).limit(max_vocab).collect())
        stats[c.name]["vocabulary"] = [[r["value"], int(r["count"])] for r in top]
    return stats
