"""`convert_table`: CSV/Parquet/JSON/ORC files or a catalog table → sharded TFRecord splits,
with per-column statistics in the manifest and rejected rows under `_rejected/`."""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from conversion.faults import fault_from_conf
from conversion.publish import Staging, refuse_over_limit, staged_output
from conversion.splits import with_split
from conversion.tables import quantiles, stats
from conversion.tables.appending import AppendPlan, fit_columns, input_listing, plan_append, relpath
from conversion.tables.commit import commit_table
from conversion.tables.input_splits import balanced_input_splits
from conversion.tables.merge import boundary_rank_bound
from conversion.tables.options import TableConvertOptions
from conversion.tables.schema import ColumnSpec, check_names, column_specs
from conversion.tables.shards import (
    COMMITTER_ALGORITHM,
    SHARD_COLUMN,
    ShardPlan,
    bucket_column,
    bucket_values,
    check_gzip_counts,
    ordered,
    shard_count_aggregates,
    shard_records,
    write_indexes,
    write_shards,
)
from conversion.tables.sidecar import VOCAB_CAP, Sidecar
from conversion.tables.survey import LabelPairs, Survey, survey
from dataset import temporal
from dataset.errors import ConversionError
from dataset.file_index import FileIndex
from dataset.layout import REJECTED_DIR, SUCCESS, DatasetFolder
from dataset.listing import Listing
from dataset.manifest import ColumnStats, Manifest, ShardFile, SplitInfo, TableColumn, TableInfo, spark_schema_of
from dataset.progress import Phases, job_group, ticking
from dataset.table_reading import CORRUPT, Source, read_table
from dataset.versions import CommitConflict, current_number, read_version

FILE_COLUMN = "_tfrecordpipe_file"  # a row's input file (the file index counts rows per file)
ROW_BYTES_GUESS = 12  # bytes per scalar feature, to size shards from --target-shard-mb
MAX_CLASSES_FOR_AUTO = 50
ONE_CLASS_PER_ROW = 0.5  # --task auto stops when a text label has more distinct values than this share of its rows
# The survey counts rows per shard hash mod SURVEY_BUCKETS (a power of two); a split's shard count from
# --target-shard-mb is a power of two up to it, so the records of every shard follow from the survey.
SURVEY_BUCKETS = 4096
# (label text, split) pairs the survey collects at most; a classification with more (hundreds of thousands of
# classes) counts its labels in a pass of its own.
LABEL_PAIRS_CAP = 1_000_000
_ALL_REJECTED_ADVICE = {
    "null": "drop or fill that column, or pass --null-policy keep (leave it missing) or fill",
    "null_label": "choose another --label",
    "non_finite_label": "choose another --label",
    "malformed_row": "check --read-option sep=..., quote=..., escape=... against the file",
}
_DTYPE_DEFAULTS: dict[str, Any] = {"int64": 0, "float32": 0.0, "string": ""}


class _Laps:
    """Seconds per phase of one run, each from the end of the one before (the first from `start`)."""

    def __init__(self, start: float) -> None:
        self.seconds: dict[str, float] = {}
        self._last = start

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.seconds[phase] = now - self._last
        self._last = now


@dataclass(frozen=True)
class TableSummary:
    output: str
    task: str
    records: dict[str, int]
    shards: dict[str, int]
    rejected: dict[str, int]
    rows_seen: int
    seconds: float
    retried_shards: int = 0  # task attempts of the shard write that failed and were retried
    phases: dict[str, float] = field(default_factory=dict)  # seconds: survey (with statistics), write, index, commit
    notes: tuple[str, ...] = ()  # how the source was read (multiLine, spellings read as missing or non-finite)
    version: int | None = None  # the version committed (None: nothing was)
    headline: str | None = None  # an append: what it added (or that nothing was new), instead of "Converted ..."

    def text(self) -> str:
        if self.version is None and self.headline:  # an append with nothing new: nothing committed
            return "\n".join((self.headline, *self.notes))
        total = sum(self.records.values())
        converted = (
            f"Converted {total} of {self.rows_seen} rows into {self.output} in {self.seconds:.1f} s ({self.task})"
        )
        lines = [self.headline or converted]
        lines += [f"  {s}: {n} records in {self.shards[s]} shards" for s, n in sorted(self.records.items())]
        rejected = ", ".join(f"{reason} {n}" for reason, n in sorted(self.rejected.items())) or "none"
        lines.append(f"  rejected: {rejected}  (see _rejected/)")
        lines += self.notes
        return "\n".join(lines)


def read_source(spark: SparkSession, options: TableConvertOptions, files: tuple[str, ...] = ()) -> Source:
    """The input as a DataFrame: files of `--format` (CSV with a header, see `dataset/table_reading.py`) or a catalog table;
    with `files`, only those files of the `--input` folder (an append; partition folders still name their columns).

    CSV is read in Spark's PERMISSIVE mode plus `CORRUPT`, which holds the raw text of rows that do not
    parse; `_convert` rejects those per `--csv-mode`.
    """
    if options.table:
        table = spark.table(options.table)
        check_names(table.columns)  # before anything is added: a real `CORRUPT` column is refused, not dropped
        return Source(table)
    null_value = (("nullValue", options.csv_null_value),) if options.csv_null_value else ()
    base = (("basePath", options.input),) if files else ()
    return read_table(
        spark,
        list(files) if files else options.input,
        options.format,
        null_value + options.read_options + base,
        options.schema,
        options.csv_multiline,
        check_names,
    )


def _col(name: str) -> Column:
    return F.col(f"`{name}`")


def _known_task(options: TableConvertOptions, label: ColumnSpec, append: AppendPlan | None) -> str | None:
    """The task before any row is read (an append keeps the version's), or None: the survey's labels decide."""
    if append is not None:
        return append.parent.manifest.table.task
    if options.task != "auto":
        return options.task
    if label.spark_type == "boolean":
        return "classification"
    if label.dtype == "float32":
        return "regression"
    return None


def _label_survey(options: TableConvertOptions, label: ColumnSpec, known: str | None) -> LabelPairs | None:
    """What the survey counts of the label: (text, split) pairs where they are the label counts (classification)
    or decide `--task auto` (an integer label: more than MAX_CLASSES_FOR_AUTO values, null counted, is
    regression; with up to that many values there are at most (MAX_CLASSES_FOR_AUTO + 1) x (splits + 1) pairs)."""
    if known == "regression":
        return None
    text = _label_text(label, "classification")
    split = F.when(F.col("_reason").isNull(), F.col("_split"))
    if known is None and label.dtype == "int64":
        return LabelPairs(text, split, (MAX_CLASSES_FOR_AUTO + 1) * (len(options.splits) + 1))
    # a text label's distinct values are estimated (`approx_count_distinct`, as `--task auto` has always counted them)
    return LabelPairs(text, split, LABEL_PAIRS_CAP, estimate_distinct=known is None and label.dtype == "string")


def _check_label_present(label: ColumnSpec, found: Survey, where: str) -> None:
    """Stop when the label has no value in any row (every row would be rejected as null_label)."""
    if not found.labelled:
        raise ConversionError(
            f"label column {label.name!r} is empty in every row of {where}; choose another --label "
            "(or fill the column in the source)"
        )


def _task(label: ColumnSpec, known: str | None, found: Survey, rows: int, df: DataFrame) -> str:
    """The task `--task auto` gives, from the survey: strings and booleans classification, integers with few
    values too.

    Raises:
        ConversionError: a text label would make nearly one class per row.
    """
    if known is not None:
        return known
    value = _col(label.name)
    present = found.labelled
    if label.dtype == "string":
        distinct = found.label_distinct or 0
        if present and distinct > MAX_CLASSES_FOR_AUTO and distinct >= ONE_CLASS_PER_ROW * present:
            examples = ", ".join(repr(r[0]) for r in df.where(value.isNotNull()).select(value).limit(3).collect())
            raise ConversionError(
                f"label column {label.name!r} has about {distinct} different values in {present} rows (e.g. "
                f"{examples}): nearly one class per row; pass --task classification to keep it so, or --task "
                f"regression with --schema '{label.name} DOUBLE' if it holds numbers"
            )
        return "classification"
    if found.label_pairs > len(found.labels):  # more pairs than collected: more values than any class count
        return "regression"
    values = len({text for text, _ in found.labels}) + (1 if present < rows else 0)  # a null is one value more
    return "classification" if values <= MAX_CLASSES_FOR_AUTO else "regression"


def _label_counts(found: Survey, df: DataFrame, label: ColumnSpec) -> dict[str, dict[str, int]]:
    """Rows kept per split and label text (classification), from the survey; a pass of their own when the
    survey collected only the LABEL_PAIRS_CAP most frequent pairs."""
    pairs = found.labels
    if found.label_pairs > len(pairs):
        text = _label_text(label, "classification")
        kept = df.where(F.col("_reason").isNull() & text.isNotNull())
        rows = kept.groupBy(F.col("_split").alias("split"), text.alias("text")).count().collect()
        pairs = {(r["text"], r["split"]): int(r["count"]) for r in rows}
    counts: dict[str, dict[str, int]] = {}
    for (text, split), n in pairs.items():
        if split is not None:
            counts.setdefault(split, {})[text] = n
    return counts


def _defaults(columns: list[ColumnSpec], overrides: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """The value of each column that stands for a null: the dtype's, or its `--null-default` (a date
    or timestamp as ISO 8601 text or a number in its unit)."""
    by_name = {c.name: c for c in columns}
    unknown = sorted(set(name for name, _ in overrides) - set(by_name))
    if unknown:
        raise ConversionError(f"--null-default names unknown columns {unknown}; columns are: {', '.join(by_name)}")
    defaults: dict[str, Any] = {c.name: _DTYPE_DEFAULTS[c.dtype] for c in columns if not c.is_list}
    for name, text in overrides:
        column = by_name[name]
        kind = column.logical_type or column.dtype
        try:
            if column.logical_type:
                defaults[name] = temporal.number_of(text, column.logical_type)
            else:
                defaults[name] = int(text) if kind == "int64" else float(text) if kind == "float32" else text
        except ValueError:
            raise ConversionError(f"--null-default {name}={text!r} is not a valid {kind}") from None
    return defaults


def _record_values(df: DataFrame, columns: list[ColumnSpec], defaults: dict[str, Any], fill: bool) -> DataFrame:
    """The columns as records hold them: dates and timestamps as numbers, null list elements as the
    element's default (a list cannot hold a missing element). A null value stays null, which
    spark-tfrecord leaves out of the record and readers parse as the manifest's default; with
    `fill` (--null-policy fill) it is written as that default instead ([] for a list)."""
    out = []
    for c in columns:
        data_type = df.schema[c.name].dataType
        value = c.value()
        if c.is_list:
            element = data_type.elementType
            if data_type.containsNull:
                fill_element = _default_literal(c, defaults.get(c.name, _DTYPE_DEFAULTS[c.dtype]), element)
                value = F.transform(value, _coalesce_with(fill_element))
            if fill:
                value = F.coalesce(value, F.array().cast(data_type))
        elif fill:
            value = F.coalesce(value, _default_literal(c, defaults[c.name], data_type))
        out.append(value.alias(c.name))
    return df.select(*out, "_split", "_h")


def _coalesce_with(fill: Column) -> Any:
    """`x -> coalesce(x, fill)` for `F.transform` (one parameter: two would be (element, index))."""
    return lambda x: F.coalesce(x, fill)


def _default_literal(column: ColumnSpec, value: Any, data_type: Any) -> Column:
    if column.is_binary:
        return F.lit(str(value).encode())
    return F.lit(value).cast("long" if column.logical_type else data_type)


def _has_null(column: ColumnSpec) -> Column:
    """Whether a row's value is null, or (lists) holds a null."""
    value = _col(column.name)
    return value.isNull() | F.exists(value, lambda x: x.isNull()) if column.is_list else value.isNull()


def _label_text(label: ColumnSpec, task: str) -> Column:
    """The label as counted in the manifest: its text for classification, else nothing."""
    if task != "classification":
        return F.lit(None).cast("string")
    text = _col(label.name).cast("int") if label.spark_type == "boolean" else label.value()  # as the record holds it
    return text.cast("string")


def convert_table(
    spark: SparkSession, options: TableConvertOptions, progress_every: float | None = None
) -> TableSummary:
    """Convert a table into shards per split, with statistics, a manifest and a rejected report.

    With `progress_every`, a progress line (`dataset.progress.Phases`: the phase, its Spark tasks done of
    total, time left) goes to stderr every that many seconds.

    Raises:
        ConversionError: unreadable input, unknown label or key column, a column type with no
            feature form, or more rejected rows than `max_reject_fraction`.
    """
    start = time.perf_counter()
    plan = _plan(spark, options)
    if plan is not None and not len(plan.new):
        return _nothing_new(options, plan, time.perf_counter() - start)
    read = read_source(spark, options, plan.urls if plan else ())
    # the read's own file index: a second listing through Spark cost about 1 s on a fresh session
    listing = input_listing(spark, options, sorted(read.frame.inputFiles())) if plan is None and options.input else None
    source = fit_columns(read.frame, plan.parent, options.format) if plan else read.frame
    names = [name for name in source.columns if name != CORRUPT]
    for role, name in (("label", options.label), ("key", options.key)):
        if name is not None and name not in names:
            raise ConversionError(f"{role} column {name!r} does not exist; columns are: {', '.join(names)}")
    columns = column_specs(T.StructType([f for f in source.schema.fields if f.name != CORRUPT]))
    label = next(c for c in columns if c.name == options.label)
    if label.dtype == "float32" and options.task == "classification":
        raise ConversionError(f"label column {label.name!r} holds floats; use --task regression or cast it")
    if label.is_list:
        raise ConversionError(f"label column {label.name!r} is a list; the label must be a scalar column")
    defaults = _defaults(columns, options.null_defaults)
    sc = spark.sparkContext
    with job_group(sc, "convert_table", f"convert_table {options.output}") as group, balanced_input_splits(spark):
        phases = Phases(sc, group)
        with (
            staged_output(options.input, options.output, options.mode) as staging,
            ticking(progress_every, phases.line),
        ):
            found = staging.parent.sha256 if staging.parent else None
            if options.mode == "append" and found != (plan.parent.sha256 if plan else None):
                raise CommitConflict(
                    f"another run committed a version of {options.output} while this one listed its input; this run "
                    "committed nothing: run it again"
                )
            inputs = (plan.new, plan.urls) if plan else (listing[0], tuple(listing[1])) if listing else None
            summary = _convert(spark, options, source, columns, label, defaults, staging, start, phases, plan, inputs)
    return replace(summary, notes=read.notes + summary.notes)


def _plan(spark: SparkSession, options: TableConvertOptions) -> AppendPlan | None:
    """What an append converts (None: not an append, or nothing committed yet: a full conversion)."""
    if options.mode != "append":
        return None
    if not current_number(DatasetFolder(options.output)):
        return None  # no dataset yet (a folder of other files is refused when the run folder begins)
    return plan_append(spark, options, read_version(options.output))


def _nothing_new(options: TableConvertOptions, plan: AppendPlan, seconds: float) -> TableSummary:
    parent = plan.parent.manifest
    line = (
        f"Nothing new under {options.input}: {len(plan.index)} files already in version {plan.parent.number} of "
        f"{options.output}; nothing committed"
    )
    kept = plan.kept_line()
    return TableSummary(
        options.output,
        parent.table.task,
        {},
        {},
        {},
        0,
        seconds,
        headline=line,
        notes=(kept,) if kept else (),
    )


def _convert(
    spark: SparkSession,
    options: TableConvertOptions,
    source: DataFrame,
    columns: list[ColumnSpec],
    label: ColumnSpec,
    defaults: dict[str, Any],
    staging: Staging,
    start: float,
    phases: Phases,
    append: AppendPlan | None = None,
    inputs: tuple[Listing, tuple[str, ...]] | None = None,
) -> TableSummary:
    phases.begin("reading")
    key = [_col(options.key)] if options.key else [_col(c.name) for c in columns]
    df = source.withColumn("_h", F.xxhash64(*key))
    df = with_split(df, _key_text(options), options.splits, "_split")
    checks = []
    if CORRUPT in source.columns:
        checks.append((CORRUPT, F.when(F.col(CORRUPT).isNotNull(), "malformed_row")))
    checks.append((label.name, F.when(_col(label.name).isNull(), "null_label")))
    if label.dtype == "float32":  # a NaN or infinite label would end training with "NaN loss"
        value = _col(label.name).cast("double")
        checks.append((label.name, F.when(F.isnan(value) | (F.abs(value) == float("inf")), "non_finite_label")))
    if options.null_policy == "reject":
        checks += [(c.name, F.when(_has_null(c), "null")) for c in columns if c.name != label.name]
    reason = F.coalesce(*[expr for _, expr in checks])
    column_name = F.coalesce(*[F.when(expr.isNotNull(), F.lit(name)) for name, expr in checks])
    # Not cached: every pass re-reads the source, which costs less than building an in-memory cache of
    # every column (500,000 rows x 30 columns of Parquet: about 1 s a scan against 12 s for the cache).
    df = df.withColumn("_reason", reason).withColumn("_column", column_name)
    if CORRUPT in source.columns and options.csv_mode == "failfast":
        # Every column read, as in the other passes: the CSV scan prunes unread columns and then finds fewer rows
        # malformed (and refuses a query of the corrupt record's column alone).
        malformed = df.where(F.col("_reason") == "malformed_row")
        first = malformed.select(CORRUPT, *[_col(c.name) for c in columns]).first()
        if first is not None:
            raise ConversionError(
                f"a row of {options.input} does not parse as CSV with the header's columns: {first[0][:200]!r}; "
                "fix it, or use --csv-mode permissive (reject such rows) or dropmalformed (--csv-multiline "
                "for quoted values holding newlines)"
            )
    if inputs is not None:
        df = df.withColumn(FILE_COLUMN, F.input_file_name())
    return _write(spark, options, df, columns, label, defaults, staging, start, phases, append, inputs)


def _row_text(df: DataFrame, columns: list[ColumnSpec]) -> Column:
    """A rejected row as JSON, or its raw text when it did not parse."""
    as_json = F.to_json(F.struct(*[_col(c.name) for c in columns]))
    return F.coalesce(F.col(CORRUPT), as_json) if CORRUPT in df.columns else as_json


def _key_text(options: TableConvertOptions) -> Column:
    """A row's key as text: the key column, else the hash of the whole row."""
    return _col(options.key).cast("string") if options.key else F.col("_h").cast("string")


def _write(
    spark: SparkSession,
    options: TableConvertOptions,
    df: DataFrame,
    columns: list[ColumnSpec],
    label: ColumnSpec,
    defaults: dict[str, Any],
    staging: Staging,
    start: float,
    phases: Phases,
    append: AppendPlan | None = None,
    inputs: tuple[Listing, tuple[str, ...]] | None = None,
) -> TableSummary:
    """Count and compute statistics (one pass), report rejects, plan shards, write them, write the manifest, commit
    (an append: merged onto the parent version, see `conversion.tables.commit`)."""
    buckets = options.num_shards or SURVEY_BUCKETS  # rows are counted per shard bucket too: see ShardPlan.records
    stats_split = options.splits[0][0]
    kept = df.where(F.col("_reason").isNull())
    group = {
        "reason": F.col("_reason"),
        "split": F.col("_split"),
        "bucket": F.when(F.col("_reason").isNull(), bucket_column(F.col("_h"), buckets)),
    }
    selected = F.col("_reason").isNull() & (F.col("_split") == stats_split)
    phases.begin("counting rows and statistics")
    file = F.col(FILE_COLUMN) if inputs is not None else None
    known = _known_task(options, label, append)
    found = survey(
        df,
        group,
        selected,
        columns,
        options.max_vocab,
        F.col("_reason").isNull(),
        VOCAB_CAP,
        file,
        _label_survey(options, label, known),
        _col(label.name).isNotNull(),
        None if append else quantiles.sample_hash(F.col("_h")),  # an append carries the version's boundaries
        options.quantile_sample_rows,
    )
    _check_label_present(label, found, options.input or options.table)
    rows_seen = sum(found.counts.values())
    if rows_seen == 0:
        raise ConversionError(f"{options.input or options.table} has no rows")
    task = _task(label, known, found, rows_seen, df)
    label_counts = _label_counts(found, df, label) if task == "classification" else {}
    rejected = df.where(F.col("_reason").isNotNull())
    rejected_counts: dict[str, int] = {}
    split_counts: dict[str, int] = {}
    bucket_counts: dict[tuple[str, int], int] = {}
    for (reason, split, bucket), n in found.counts.items():
        if reason is not None:
            rejected_counts[reason] = rejected_counts.get(reason, 0) + n
            continue
        split_counts[split] = split_counts.get(split, 0) + n
        bucket_counts[split, bucket] = bucket_counts.get((split, bucket), 0) + n
    rejected_total = sum(rejected_counts.values())
    if rejected_total:
        rejected.select(
            _key_text(options).alias("key"),
            F.col("_column").alias("column"),
            F.col("_reason").alias("reason"),
            _row_text(df, columns).alias("row"),
        ).coalesce(1).write.option(COMMITTER_ALGORITHM, "2").json(f"{staging.url()}/{REJECTED_DIR}")
    else:  # the files Spark writes for no rows (an empty part and _SUCCESS), without a Spark job (1-2 s)
        for name in (f"part-00000-{uuid.uuid4()}-c000.json", SUCCESS):
            staging.write_text(f"{REJECTED_DIR}/{name}", "")
    counted = rejected_total - (rejected_counts.get("malformed_row", 0) if options.csv_mode == "dropmalformed" else 0)
    refuse_over_limit(staging, counted, rows_seen, options.max_reject_fraction, "rows")  # before writing
    if not split_counts:  # every row rejected, e.g. a column null in every row under --null-policy reject
        staging.drop_all_but_rejected()
        why = rejected.groupBy("_reason", "_column").count().orderBy(F.desc("count"), "_reason", "_column").collect()
        reasons = ", ".join(f"{r['_reason']} in column {r['_column']!r}: {r['count']}" for r in why)
        advice = _ALL_REJECTED_ADVICE.get(why[0]["_reason"], "fix the source")
        raise ConversionError(
            f"every row of {options.input or options.table} was rejected ({reasons}); nothing was written: "
            f"{advice}; see {staging.url()}/{REJECTED_DIR}"
        )
    laps = _Laps(start)
    laps.lap("survey")  # reading, counts, statistics and the label's task, the rejected report
    wanted = {split: _shard_count(options, split_counts[split], len(columns)) for split in sorted(split_counts)}
    plan = ShardPlan(tuple(wanted.items()), options.compression)
    names = plan.names()
    keep = options.null_policy == "keep"  # nulls left out of the records (fill: written as the default)
    features = {c.name: c.feature(found.absent.get(c.name, 0) if keep else 0, defaults.get(c.name)) for c in columns}
    filled = (
        _record_values(kept, columns, defaults, options.null_policy == "fill")
        .withColumn(SHARD_COLUMN, plan.shard_column(F.col("_split"), F.col("_h")))
        .withColumn("_order", F.xxhash64(F.col("_h"), F.lit("order")))
    )
    sort = ["_order", "_h"]
    if options.key:  # rows sharing a key are ordered by their whole content: reruns stay byte-identical
        filled = filled.withColumn("_row", F.xxhash64(*[_col(c.name) for c in columns]))
        sort.append("_row")
    records = plan.records(bucket_counts, buckets)
    shard_counts = None
    if records is None:  # a split with fewer rows than --num-shards: its shards are counted on the write
        shard_counts = Observation(f"tfrecordpipe_shards_{uuid.uuid4().hex}")
        filled = filled.observe(shard_counts, *shard_count_aggregates(plan.total))
    rows = ordered(filled, bucket_values(plan.total), sort)
    phases.begin("writing shards")
    result = write_shards(spark, rows, spark_schema_of(features), plan, staging, fault_from_conf(spark))
    if shard_counts is not None:
        records = shard_records(shard_counts.get)
    sizes = result.sizes
    if {shard for shard, size in sizes.items() if size} != set(records):  # partition 0 writes a file, even empty
        raise ConversionError(f"shards written {sorted(sizes)} are not the shards with rows {sorted(records)}")
    written = {}
    for index, name in enumerate(names):  # a shard no row hashed to is written empty, so the count is exact
        if index not in sizes:
            staging.fs.touch(f"{staging.path}/{name}")
        written[index] = (records.get(index, 0), sizes.get(index, 0))
    laps.lap("write")
    indexes = write_indexes(spark, staging, tuple(names), written) if plan.compression == "none" else {}
    if shard_counts is not None and plan.compression != "none":  # observed counts, no index to check them by
        check_gzip_counts(spark, staging, tuple(names), written)
    laps.lap("index")
    labels = sorted({v for per_split in label_counts.values() for v in per_split})
    column_stats = {name: dict(values) for name, values in found.stats.items()}
    if not append:  # the quantile boundaries, from the survey's sample (an append carries the version's)
        numeric = [c.name for c in stats.numeric_columns(columns)]
        sample = quantiles.QuantileSample.of(
            found.samples, split_counts.get(stats_split, 0), options.quantile_sample_rows, len(numeric)
        )
        for name, boundaries in sample.boundaries(numeric, options.num_quantiles).items():
            column_stats.setdefault(name, {})["boundaries"] = boundaries
    splits = {}
    for split, n in plan.counts:
        at = [plan.offset(split) + i for i in range(n)]
        files = tuple(ShardFile(names[i], *written[i], indexes.get(names[i])) for i in at)
        splits[split] = SplitInfo(
            sum(f.num_records for f in files), files, dict(sorted(label_counts.get(split, {}).items()))
        )
    manifest = Manifest(
        kind="table",
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        source_root=options.input or f"table:{options.table}",
        options={k: v for k, v in asdict(options).items() if k not in ("input", "output")},
        labels=tuple(labels),
        features=features,
        splits=splits,
        compression=options.compression,
        num_files_seen=rows_seen,
        num_rejected=dict(sorted(rejected_counts.items())),
        label_feature=label.name,
        key_feature=options.key,
        table=TableInfo(
            label=label.name,
            key=options.key,
            task=task,
            stats_split=stats_split,
            columns={
                c.name: TableColumn(c.spark_type, ColumnStats.from_dict(column_stats.get(c.name, {}))) for c in columns
            },
        ),
    )
    sidecar = _sidecar(options, columns, found, inputs)
    index = _file_index(inputs[0]) if inputs is not None else None
    version_manifest, version, inexact = commit_table(
        staging, manifest, sidecar, index, append, counted, rows_seen, options.max_reject_fraction
    )
    laps.lap("commit")
    headline, notes = None, ()
    if append is not None:
        headline = (
            f"Appended {sum(s.num_records for s in splits.values())} of {rows_seen} rows from {len(append.new)} new "
            f"files to {options.output} as version {version.number} ({version_manifest.num_records} records) in "
            f"{time.perf_counter() - start:.1f} s"
        )
        over = f"  value counts not exact (over {VOCAB_CAP} distinct values): {', '.join(inexact)}" if inexact else None
        notes = tuple(line for line in (append.kept_line(), _carried_line(append, version_manifest), over) if line)
    return TableSummary(
        options.output,
        task,
        {s: i.num_records for s, i in splits.items()},
        {s: len(i.files) for s, i in splits.items()},
        manifest.num_rejected,
        rows_seen,
        time.perf_counter() - start,
        result.failed_tasks,
        laps.seconds,
        notes,
        version.number,
        headline,
    )


def _shard_count(options: TableConvertOptions, records: int, num_columns: int) -> int:
    """A split's shards: `--num-shards`, or one per `--target-shard-mb` rounded up to a power of two (a divisor of
    SURVEY_BUCKETS, which it does not exceed), never more than its records (the largest power of two that fits)."""
    wanted = options.shards_for(records, records * num_columns * ROW_BYTES_GUESS)
    if options.num_shards:
        return wanted
    power = min(1 << (wanted - 1).bit_length(), SURVEY_BUCKETS)
    return power if power <= records else 1 << (records.bit_length() - 1)


def _file_index(listing: Listing) -> FileIndex:
    """The index rows of the files read: a table file's rows go to many shards (`shard` null)."""
    stamps = listing.stamps if listing.stamps is not None else None
    return FileIndex.of(listing.relpaths, listing.sizes, stamps)


def _sidecar(options: TableConvertOptions, columns: list[ColumnSpec], found: Survey, inputs: tuple | None) -> Sidecar:
    """This run's value counts, distinct counts, the values its quantile boundaries came from, rows per file."""
    strings = stats.string_columns(columns)
    distinct = {c.name: found.stats[c.name]["num_distinct"] for c in strings}
    numeric = {c.name: found.stats.get(c.name, {}).get("count") or 0 for c in stats.numeric_columns(columns)}
    file_rows = {}
    if inputs is not None:
        in_run = {relpath(options.input, url): 0 for url in inputs[1]}
        for url, n in found.file_rows.items():
            in_run[relpath(options.input, url)] = n
        file_rows = in_run
    return Sidecar(
        {c.name: found.value_counts.get(c.name, {}) for c in strings},
        distinct,
        {name: n <= VOCAB_CAP for name, n in distinct.items()},
        numeric,
        file_rows,
    )


def _carried_line(plan: AppendPlan, manifest: Manifest) -> str | None:
    """How far the rows added since the carried quantile boundaries were computed can have moved their rank
    (largest over the columns)."""
    computed_on = plan.sidecar.boundaries_count
    bounds = [
        boundary_rank_bound(computed_on[name], column.stats.count or 0)
        for name, column in manifest.table.columns.items()
        if name in computed_on and column.stats.boundaries
    ]
    if not bounds:
        return None
    return (
        f"  quantile boundaries carried from version {plan.sidecar.boundaries_version}: the rows added since move "
        f"their rank by at most {max(bounds):.2%} (--mode overwrite recomputes them)"
    )
