"""The one pass over the rows before the write: counts and statistics in a single Spark job.

Every row is counted in its group (reject reason, split, label text, shard bucket); the rows of
the statistics split also yield one (column, value) pair per string column, counted in the same
groupBy (the vocabularies), and feed the numeric statistics, which `observe` aggregates on the
way (`conversion.tables.stats`; the quantiles wait for the write pass). One read of the source
instead of one per figure.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Observation, Window
from pyspark.sql import functions as F

from conversion.tables import stats
from conversion.tables.schema import ColumnSpec

GROUP = ("reason", "split", "label", "bucket")
_COUNTS = -1  # the `kind` of a group's row; a string column's pairs have its index
_FILES = -2  # the `kind` of a (file, rows) pair: rows read per input file (the file index of appends)


_TYPES = {"reason": "string", "split": "string", "label": "string", "bucket": "long"}


@dataclass(frozen=True)
class Survey:
    counts: dict[tuple, int]  # rows per (reason, split, label text, bucket)
    stats: dict[str, dict]  # statistics per scalar column of the selected rows
    absent: dict[str, int]  # per column: the `written` rows (every split) whose value is null
    value_counts: dict[str, dict[str, int]]  # per string column: up to `keep_values` most frequent values
    file_rows: dict[str, int]  # rows per input file (its URL as Spark names it), when `file` is given


def _entry(kind: int, value: Column, group: dict[str, Column]) -> Column:
    """One (kind, value, group...) struct; the fields `group` lacks are null."""
    fields = [group.get(g, F.lit(None)).cast(_TYPES[g]).alias(g) for g in GROUP]
    return F.struct(F.lit(kind).alias("kind"), value.cast("string").alias("value"), *fields)


def survey(
    df: DataFrame,
    group: dict[str, Column],
    selected: Column,
    columns: list[ColumnSpec],
    max_vocab: int,
    written: Column,
    keep_values: int | None = None,
    file: Column | None = None,
) -> Survey:
    """Count `df`'s rows by `group` (the columns named in GROUP), compute the statistics of
    the rows where `selected` holds and count the nulls of each column where `written` holds,
    in one Spark job. Each string column's `keep_values` (at least `max_vocab`) most frequent values are
    kept with their counts; with `file` (the input file of a row), rows are counted per file too."""
    keep = max(max_vocab, keep_values or 0)
    strings = stats.string_columns(columns)
    observation = Observation(f"tfrecordpipe_stats_{uuid.uuid4().hex}")
    aggregates = stats.aggregates(columns, selected) + stats.absent_aggregates(columns, written)
    observed = df.observe(observation, *aggregates) if aggregates else df
    entries = [_entry(_COUNTS, F.lit(None), group)]
    if file is not None:
        entries.append(_entry(_FILES, file, {}))
    for index, c in enumerate(strings):
        entries.append(_entry(index, F.when(selected, F.col(f"`{c.name}`")), {}))
    pairs = (
        observed.select(F.inline(F.array(*entries)))
        .where((F.col("kind") == _COUNTS) | F.col("value").isNotNull())
        .groupBy("kind", "value", *GROUP)
        .count()
    )
    by_kind = Window.partitionBy("kind")
    ranked = pairs.withColumn("rank", F.row_number().over(by_kind.orderBy(F.desc("count"), F.asc("value")))).withColumn(
        "distinct", F.count(F.lit(1)).over(by_kind)
    )
    counts: dict[tuple, int] = {}
    vocabularies: dict[int, list] = {i: [] for i in range(len(strings))}
    distinct: dict[int, int] = {i: 0 for i in range(len(strings))}
    file_rows: dict[str, int] = {}
    rows = ranked.where((F.col("kind") < 0) | (F.col("rank") <= keep)).orderBy("kind", "rank").collect()
    for row in rows:
        if row["kind"] == _COUNTS:
            counts[tuple(row[g] for g in GROUP)] = int(row["count"])
        elif row["kind"] == _FILES:
            file_rows[row["value"]] = int(row["count"])
        else:
            vocabularies[row["kind"]].append([row["value"], int(row["count"])])
            distinct[row["kind"]] = int(row["distinct"])
    result = stats.from_aggregates(observation.get if aggregates else {})
    absent = {name: values.pop(stats.ABSENT) for name, values in result.items() if stats.ABSENT in values}
    result = {name: values for name, values in result.items() if values}  # lists: no statistics
    for index, c in enumerate(strings):
        result.setdefault(c.name, {}).update(num_distinct=distinct[index], vocabulary=vocabularies[index][:max_vocab])
    value_counts = {c.name: dict(map(tuple, vocabularies[i])) for i, c in enumerate(strings)}
    return Survey(counts, result, absent, value_counts, file_rows)
