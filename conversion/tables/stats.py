"""Per-column statistics computed by Spark, stored in the manifest for training's preprocessing."""

from __future__ import annotations

from typing import Any

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from conversion.tables.schema import ColumnSpec


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
            F.count(finite).alias(f"{c.name}|count"),
            F.avg(finite).alias(f"{c.name}|mean"),
            F.stddev_samp(finite).alias(f"{c.name}|stddev"),
            F.min(finite).alias(f"{c.name}|min"),
            F.max(finite).alias(f"{c.name}|max"),
            F.sum(F.col(f"`{c.name}`").isNull().cast("long")).alias(f"{c.name}|null_count"),
            F.sum((F.isnan(raw) if is_float else F.lit(False)).cast("long")).alias(f"{c.name}|nan_count"),
            F.sum((F.abs(raw) == float("inf")).cast("long") if is_float else F.lit(0)).alias(f"{c.name}|inf_count"),
        ]
    for c in strings:
        aggregates.append(F.sum(F.col(f"`{c.name}`").isNull().cast("long")).alias(f"{c.name}|null_count"))
    stats: dict[str, dict] = {c.name: {} for c in numeric + strings}
    if aggregates:
        row = df.agg(*aggregates).first().asDict()
        for key, value in row.items():
            name, stat = key.rsplit("|", 1)
            stats[name][stat] = value if value is None or isinstance(value, float) else int(value)
    if numeric:
        # positional aliases: approxQuantile takes names, and reads a dot in one as a struct field
        finite_df = df.select(*[_finite(c.name, c.dtype == "float32").alias(f"q{i}") for i, c in enumerate(numeric)])
        probabilities = [i / num_quantiles for i in range(1, num_quantiles)]
        boundaries = finite_df.approxQuantile([f"q{i}" for i in range(len(numeric))], probabilities, 0.001)
        for c, values in zip(numeric, boundaries):
            stats[c.name]["boundaries"] = sorted(set(values))
    if strings:
        for name, (distinct, vocabulary) in _string_counts(df, [c.name for c in strings], max_vocab).items():
            stats[name].update(num_distinct=distinct, vocabulary=vocabulary)
    return stats


def _string_counts(df: DataFrame, names: list[str], max_vocab: int) -> dict[str, tuple[int, list]]:
    """For every string column at once (one Spark job): distinct non-null values and the top values."""
    pairs = (
        df.select(
            F.explode(
                F.array(*[F.struct(F.lit(name).alias("column"), F.col(f"`{name}`").alias("value")) for name in names])
            ).alias("pair")
        )
        .select("pair.column", "pair.value")
        .where(F.col("value").isNotNull())
    )
    counts = pairs.groupBy("column", "value").count()
    by_column = Window.partitionBy("column")
    ranked = counts.withColumn(
        "rank", F.row_number().over(by_column.orderBy(F.desc("count"), F.asc("value")))
    ).withColumn("distinct", F.count(F.lit(1)).over(by_column))
    result: dict[str, tuple[int, list]] = {name: (0, []) for name in names}
    for row in ranked.where(F.col("rank") <= max_vocab).orderBy("column", "rank").collect():
        distinct, vocabulary = result[row["column"]]
        vocabulary.append([row["value"], int(row["count"])])
        result[row["column"]] = (int(row["distinct"]), vocabulary)
    return result
