"""The one pass over the rows before the write: counts and statistics in a single Spark job.

Every row is counted in its group (reject reason, split, shard bucket); every row's label text is
counted per split (a rejected row's split left out: its labels only decide `--task auto`); the rows
of the statistics split also yield one (column, value) pair per string column, counted in the same
groupBy (the vocabularies), and feed the numeric statistics, which `observe` aggregates on the
way with whatever else the caller observes (`conversion.tables.stats`; the quantiles wait for the
write pass). One read of the source instead of one per figure: the write is the only other one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import Column, DataFrame, Observation, Window
from pyspark.sql import functions as F

from conversion.tables import stats
from conversion.tables.schema import ColumnSpec

GROUP = ("reason", "split", "bucket")
_COUNTS = -1  # the `kind` of a group's row; a string column's pairs have its index
_FILES = -2  # the `kind` of a (file, rows) pair: rows read per input file (the file index of appends)
_LABELS = -3  # the `kind` of a (label text, split) pair


_TYPES = {"reason": "string", "split": "string", "bucket": "long"}


@dataclass(frozen=True)
class LabelPairs:
    """The label's (text, split) pairs to count: `text` per row, `split` null where the row is rejected; at most
    `limit` of them are collected, the most frequent first (None: all)."""

    text: Column
    split: Column
    limit: int | None = None


@dataclass(frozen=True)
class Survey:
    counts: dict[tuple, int]  # rows per (reason, split, bucket)
    stats: dict[str, dict]  # statistics per scalar column of the selected rows
    absent: dict[str, int]  # per column: the `written` rows (every split) whose value is null
    value_counts: dict[str, dict[str, int]]  # per string column: up to `keep_values` most frequent values
    file_rows: dict[str, int]  # rows per input file (its URL as Spark names it), when `file` is given
    labels: dict[tuple[str, str | None], int] = field(default_factory=dict)  # rows per (label text, split)
    label_pairs: int = 0  # how many (label text, split) pairs there are (`labels` may hold fewer: the limit)
    observed: dict[str, Any] = field(default_factory=dict)  # the values of the `observe` aggregates passed in


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
    label: LabelPairs | None = None,
    observe: tuple[Column, ...] = (),
) -> Survey:
    """Count `df`'s rows by `group` (the columns named in GROUP), compute the statistics of
    the rows where `selected` holds and count the nulls of each column where `written` holds,
    in one Spark job. Each string column's `keep_values` (at least `max_vocab`) most frequent values are
    kept with their counts; with `file` (the input file of a row), rows are counted per file too; with
    `label`, its non-null (text, split) pairs; `observe` (named aggregates, names without `|`) are computed
    over every row on the way."""
    keep = max(max_vocab, keep_values or 0)
    strings = stats.string_columns(columns)
    observation = Observation(f"tfrecordpipe_stats_{uuid.uuid4().hex}")
    aggregates = stats.aggregates(columns) + stats.absent_aggregates(columns, written) + list(observe)
    observed = df.withColumns(stats.statistic_inputs(columns, selected)).observe(observation, *aggregates)
    selected = F.col(stats.SELECTED)
    entries = [_entry(_COUNTS, F.lit(None), group)]
    if file is not None:
        entries.append(_entry(_FILES, file, {}))
    if label is not None:
        entries.append(_entry(_LABELS, label.text, {"split": label.split}))
    for index, c in enumerate(strings):
        entries.append(_entry(index, F.when(selected, F.col(f"`{c.name}`")), {}))
    pairs = (
        observed.select(F.inline(F.array(*entries)))
        .where((F.col("kind") == _COUNTS) | F.col("value").isNotNull())
        .groupBy("kind", "value", *GROUP)
        .count()
    )
    by_kind = Window.partitionBy("kind")
    ranked = (
        pairs.withColumn("rank", F.row_number().over(by_kind.orderBy(F.desc("count"), F.asc("value"))))
        .withColumn("distinct", F.count(F.lit(1)).over(by_kind))
        .withColumn("total", F.sum("count").over(by_kind))
    )
    counts: dict[tuple, int] = {}
    vocabularies: dict[int, list] = {i: [] for i in range(len(strings))}
    distinct: dict[int, int] = {i: 0 for i in range(len(strings))}
    present: dict[int, int] = {}  # per string column: its non-null values in the selected rows
    file_rows: dict[str, int] = {}
    kind = F.col("kind")
    label_limit = label.limit if label is not None and label.limit is not None else None
    wanted = F.when(kind.isin(_COUNTS, _FILES), True)
    if label_limit is not None:
        wanted = wanted.when(kind == _LABELS, F.col("rank") <= label_limit)
    wanted = wanted.when(kind >= 0, F.col("rank") <= keep).otherwise(kind == _LABELS)
    labels: dict[tuple[str, str | None], int] = {}
    label_pairs = 0
    rows = ranked.where(wanted).orderBy("kind", "rank").collect()
    for row in rows:
        if row["kind"] == _COUNTS:
            counts[tuple(row[g] for g in GROUP)] = int(row["count"])
        elif row["kind"] == _FILES:
            file_rows[row["value"]] = int(row["count"])
        elif row["kind"] == _LABELS:
            labels[row["value"], row["split"]] = int(row["count"])
            label_pairs = int(row["distinct"])
        else:
            vocabularies[row["kind"]].append([row["value"], int(row["count"])])
            distinct[row["kind"]] = int(row["distinct"])
            present[row["kind"]] = int(row["total"])
    values = dict(observation.get)
    selected_rows = int(values.pop(stats.SELECTED_ROWS))
    extra = {key: values.pop(key) for key in list(values) if "|" not in key}
    result = stats.from_aggregates(values)
    stats.add_null_counts(result, columns, selected_rows, {c.name: present.get(i, 0) for i, c in enumerate(strings)})
    absent = {name: values.pop(stats.ABSENT) for name, values in result.items() if stats.ABSENT in values}
    result = {name: values for name, values in result.items() if values}  # lists: no statistics
    for index, c in enumerate(strings):
        result.setdefault(c.name, {}).update(num_distinct=distinct[index], vocabulary=vocabularies[index][:max_vocab])
    value_counts = {c.name: dict(map(tuple, vocabularies[i])) for i, c in enumerate(strings)}
    return Survey(counts, result, absent, value_counts, file_rows, labels, label_pairs, extra)
