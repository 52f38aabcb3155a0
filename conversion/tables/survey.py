"""The one pass over the rows before the write: counts and statistics in a single Spark job.

Every row is counted in its group (reject reason, split, shard bucket); every row's label text is
counted per split (a rejected row's split left out: its labels only decide `--task auto`); the rows
of the statistics split have each string column's values counted (the vocabularies) and feed the
numeric statistics. Each partition computes its part with Arrow in the Python worker
(`conversion.tables.partials`); Spark sums the counts over partitions and ranks each string column's
values, and the moments are folded here; with a sample hash, each partition keeps a hash sample of the
statistics split's numeric values for the quantile boundaries (`conversion.tables.quantiles`). Nothing is
observed on the way: an observation ends Spark's generated code before it, so every row was built twice (fresh
2,000,000-row jobs: the survey phase 15.99-16.42 s with it, 14.76-14.88 s without). One read of the source instead of one per figure: the write is
the only other one.
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from conversion.session_settings import session_setting
from conversion.tables import stats
from conversion.tables.input_splits import SPLITS_PER_CORE
from conversion.tables.partials import (
    COUNTS,
    FILES,
    LABELS,
    MOMENTS,
    SCHEMA,
    PartitionResults,
    SurveyLayout,
    SurveyPartials,
    merge_moments,
)
from conversion.tables.quantiles import partition_cap
from conversion.tables.schema import ColumnSpec

GROUP = ("reason", "split", "bucket")
_COLLECTED = ("kind", "rank", "value", *GROUP, "count", "distinct", "total")  # the order the rows are read in
_INPUT = "_tfrecordpipe_survey_"  # + a number: the columns the partitions' survey reads, by position
CONSTRAINTS = "spark.sql.constraintPropagation.enabled"
SHUFFLE_PARTITIONS = "spark.sql.shuffle.partitions"


@dataclass(frozen=True)
class LabelPairs:
    """The label's (text, split) pairs to count: `text` per row, `split` null where the row is rejected; at most
    `limit` of them are collected, the most frequent first (None: all). With `estimate_distinct`, the distinct
    texts are estimated as `approx_count_distinct` over every row would (its sketch depends only on the set of
    values: each distinct pair's text gives the same)."""

    text: Column
    split: Column
    limit: int | None = None
    estimate_distinct: bool = False


@dataclass(frozen=True)
class Survey:
    counts: dict[tuple, int]  # rows per (reason, split, bucket)
    stats: dict[str, dict]  # statistics per scalar column of the selected rows
    absent: dict[str, int]  # per column: the `written` rows (every split) whose value is null
    value_counts: dict[str, dict[str, int]]  # per string column: up to `keep_values` most frequent values
    file_rows: dict[str, int]  # rows per input file (its URL as Spark names it), when `file` is given
    labels: dict[tuple[str, str | None], int] = field(default_factory=dict)  # rows per (label text, split)
    label_pairs: int = 0  # how many (label text, split) pairs there are (`labels` may hold fewer: the limit)
    labelled: int = 0  # rows where `labelled` holds, when given
    label_distinct: int | None = None  # about how many distinct label texts (`LabelPairs.estimate_distinct`)
    samples: dict[int, Any] = field(default_factory=dict)  # per partition: its quantile sample (level, hashes, values)


def without_constraint_inference(spark: SparkSession) -> AbstractContextManager[None]:
    """Within the block, Spark's optimizer infers no constraints (the session's setting restored after). The survey
    passes every column on under a new name, and the inference doubles its work for each renamed column: 30
    columns found no plan in 10 minutes. The survey's query has no join or filter for the constraints to prune."""
    return session_setting(spark, CONSTRAINTS, "false")


def few_shuffle_partitions(spark: SparkSession) -> AbstractContextManager[None]:
    """Within the block, Spark's shuffles (the counts' sum and ranking) have SPLITS_PER_CORE partitions a core, unless
    the session sets `spark.sql.shuffle.partitions` itself. With Spark's default of 200, every survey task wrote
    200 shuffle files for about 44,000 counted rows (warm, 2,000,000 rows on 2 cores: the survey phase 6.8-7.5 s at
    200, 6.3-6.8 s at 4, 6.1-6.5 s at 16, 6.5-7.0 s at 64). Sums and ranks do not depend on the partitioning."""
    tasks = SPLITS_PER_CORE * spark.sparkContext.defaultParallelism
    return session_setting(spark, SHUFFLE_PARTITIONS, str(tasks), unless_set=True)


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
    labelled: Column | None = None,
    sample: Column | None = None,
    sample_rows: int = 0,
) -> Survey:
    """Count `df`'s rows by `group` (the columns named in GROUP), compute the statistics of
    the rows where `selected` holds and count the nulls of each column where `written` holds,
    in one Spark job. Each string column's `keep_values` (at least `max_vocab`) most frequent values are
    kept with their counts; with `file` (the input file of a row), rows are counted per file too; with
    `label`, its non-null (text, split) pairs; with `labelled` (a flag), the rows where it holds; with `sample`
    (a row's quantile sample hash), each partition keeps about twice its share of `sample_rows` selected rows'
    numeric values (`Survey.samples`)."""
    keep = max(max_vocab, keep_values or 0)
    strings = stats.string_columns(columns)
    numeric = stats.numeric_columns(columns)
    others = [c for c in columns if c not in numeric and c not in strings]
    inputs = [group["reason"], group["split"], group["bucket"], selected, written]
    inputs += [file] if file is not None else []
    inputs += [label.text, label.split] if label is not None else []
    inputs += [labelled] if labelled is not None else []
    inputs += [c.value().cast("double") for c in numeric] + [F.col(f"`{c.name}`") for c in strings]
    inputs += [F.col(f"`{c.name}`").isNull() for c in others]
    sampled = sample is not None and bool(numeric)
    inputs += [sample] if sampled else []
    selection = df.select(*[column.alias(f"{_INPUT}{i}") for i, column in enumerate(inputs)])
    cap = 0
    if sampled:
        with without_constraint_inference(df.sparkSession):
            cap = partition_cap(sample_rows, selection.rdd.getNumPartitions())
    layout = SurveyLayout(
        tuple(c.dtype == "float32" for c in numeric),
        len(strings),
        len(others),
        file is not None,
        label is not None,
        cap,
        labelled is not None,
    )
    samples = df.sparkSession.sparkContext.accumulator({}, PartitionResults()) if sampled else None
    pairs = (
        selection.mapInArrow(SurveyPartials(layout, samples), SCHEMA)
        .groupBy("kind", "value", *GROUP)
        .agg(F.sum("count").alias("count"))
    )
    by_kind = Window.partitionBy("kind")
    ranked = (
        pairs.withColumn("rank", F.row_number().over(by_kind.orderBy(F.desc("count"), F.asc("value"))))
        .withColumn("distinct", F.count(F.lit(1)).over(by_kind))
        .withColumn("total", F.sum("count").over(by_kind))
    )
    estimated = label is not None and label.estimate_distinct
    if estimated:
        ranked = ranked.withColumn("estimate", F.approx_count_distinct("value").over(by_kind))
    counts: dict[tuple, int] = {}
    vocabularies: dict[int, list] = {i: [] for i in range(len(strings))}
    distinct: dict[int, int] = {i: 0 for i in range(len(strings))}
    present: dict[int, int] = {}  # per string column: its non-null values in the selected rows
    file_rows: dict[str, int] = {}
    of_kind = F.col("kind")
    label_limit = label.limit if label is not None and label.limit is not None else None
    wanted = F.when(of_kind.isin(COUNTS, FILES, MOMENTS), True)
    if label_limit is not None:
        wanted = wanted.when(of_kind == LABELS, F.col("rank") <= label_limit)
    wanted = wanted.when(of_kind >= 0, F.col("rank") <= keep).otherwise(of_kind == LABELS)
    labels: dict[tuple[str, str | None], int] = {}
    label_pairs = 0
    label_distinct = 0 if estimated else None
    with without_constraint_inference(df.sparkSession), few_shuffle_partitions(df.sparkSession):
        found = ranked.where(wanted).select(*_COLLECTED, *(["estimate"] if estimated else [])).collect()
    # by position: a Row looks a name up in its fields each time (the benchmark's survey: 0.31 s, now 0.07 s)
    rows = sorted(map(tuple, found), key=lambda row: row[:2])  # here, not by Spark: a range shuffle less
    partitions = []
    for kind, _, value, reason, split, bucket, count, n_distinct, total, *estimate in rows:
        if kind == MOMENTS:
            partitions.append(json.loads(value))
        elif kind == COUNTS:
            counts[reason, split, bucket] = int(count)
        elif kind == FILES:
            file_rows[value] = int(count)
        elif kind == LABELS:
            labels[value, split] = int(count)
            label_pairs = int(n_distinct)
            label_distinct = int(estimate[0]) if estimated else None
        else:
            vocabularies[kind].append([value, int(count)])
            distinct[kind] = int(n_distinct)
            present[kind] = int(total)
    values, selected_rows, absent_rows = merge_moments(partitions, [c.name for c in numeric])
    result = stats.from_aggregates(values)
    stats.add_null_counts(result, columns, selected_rows, {c.name: present.get(i, 0) for i, c in enumerate(strings)})
    order = [*numeric, *strings, *others]
    absent = {c.name: absent_rows[i] if absent_rows else 0 for i, c in enumerate(order)}
    labelled_rows = sum(int(part.get("labelled", 0)) for part in partitions)
    result = {name: values for name, values in result.items() if values}  # lists: no statistics
    for index, c in enumerate(strings):
        result.setdefault(c.name, {}).update(num_distinct=distinct[index], vocabulary=vocabularies[index][:max_vocab])
    value_counts = {c.name: dict(map(tuple, vocabularies[i])) for i, c in enumerate(strings)}
    partition_samples = dict(samples.value) if samples is not None else {}
    return Survey(
        counts,
        result,
        absent,
        value_counts,
        file_rows,
        labels,
        label_pairs,
        labelled_rows,
        label_distinct,
        partition_samples,
    )
