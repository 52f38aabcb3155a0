"""Benchmark: the Spark `convert_table` job against spark-tfrecord's own write and a single-process Python loop.

    python -m benchmarks.convert_table                        # 2,000,000 rows x 30 columns
    python -m benchmarks.convert_table --sections whole       # the job and spark-tfrecord's write, whole runs
    python -m benchmarks.convert_table --rows 50000 --cores 2 # a short run
    python -m benchmarks.convert_table --smoke                # 2,000 rows in a temporary folder

The whole-run section (`--sections whole`, also in `all`) times each run as a new user meets it: a fresh Python
process that starts its own Spark (`jobs.spark_cli.spark_session`, as the job does) and runs one thing, timed
from the process's start to its end by this one: the table job with default options, the table job with
`--num-shards`, and for each spark-tfrecord's own `spark.read.parquet(...).repartition(shards).write
.format("tfrecord")` of the same rows (the boolean column cast to int: spark-tfrecord refuses booleans) into as many shards as the job wrote (the shuffle both pay; no splits,
no statistics). The job's own phases are printed beside it (start, survey with statistics, write, index
writing, commit), and the one-process Example loop's time against the job's.

One table of `--rows` rows and 30 mixed columns (12 float64, 10 int64, 6 strings with small to
large vocabularies, 1 boolean and a 5-class string label; a few percent nulls in 9 columns) is
generated deterministically (seeded numpy) as Parquet under `--workdir` (several files, row
groups of 100k rows) and reused by later runs with the same row count.

The same table is converted twice in one run: by a plain Python loop (pyarrow record batches,
nulls filled with the job's defaults, a `tf.train.Example` per row, three
`tf.io.TFRecordWriter` split files) and by the Spark job (`convert_table`, Parquet input,
`--num-shards` shards per split, records built in the JVM by spark-tfrecord). The Spark session
start-up is counted in the Spark end-to-end time, which is also shown by phase (start, count
with statistics, write, publish). The session is the job's (`jobs.spark_cli.spark_session`; a job
that writes tfrecord keeps full tiered JIT). Then the train split is read back into a DataFrame through
spark-tfrecord (`dataset.spark_read.read_split`, counted) and exported to Parquet
(`jobs.export_parquet`). MB are the Parquet bytes on disk. The comparison is printed
(benchmarks/harness.py) and written to `<workdir>/results.json`.

The multiLine section writes the same table as one CSV file of at least `--csv-mb` MB (pyarrow's CSV
writer: every text quoted, RFC 4180; the table's rows repeated until the size is reached) and reads it as the
table job does (`dataset.table_reading.text_frame`: every column as text, every column parsed) with
`multiLine` off and on (same rows), then times the line scan for open quotes that decides the default for a
file Spark splits into several tasks. `--sections multiline` runs that section alone (no TensorFlow).
"""

from __future__ import annotations

if not __package__:  # run by path, `python benchmarks/convert_table.py`: import as `-m` does
    import _repo_root  # noqa: F401

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from benchmarks.harness import (
    MB,
    Figures,
    Table,
    Target,
    add_run_arguments,
    benchmark_run,
    import_tensorflow,
    jvm_thread_cpu,
    per_second,
    rate_cell,
    ratio,
    seconds_cell,
    start_spark,
    timed,
    write_results,
)
from conversion.tables.convert import TableSummary, convert_table
from conversion.tables.options import TableConvertOptions
from dataset.errors import ConversionError
from dataset.spark_read import read_split
from dataset.table_reading import file_with_open_quote, text_frame
from jobs.export_parquet import export_parquet
from jobs.spark_cli import add_spark_arguments

SEED = 20240611
GENERATOR_VERSION = 1  # bump when the generated data changes, so old tables are regenerated
MARKER = "generated.json"
NUM_FILES = 8
ROW_GROUP_ROWS = 100_000
LOOP_BATCH_ROWS = 65_536
LOOP_SPLITS = ("train", "validation", "test")
LABEL = "label"
LABEL_CLASSES = ("bronze", "silver", "gold", "platinum", "diamond")
LABEL_WEIGHTS = (0.35, 0.25, 0.2, 0.12, 0.08)
NUM_FLOATS = 12
INT_RANGES = (  # [low, high) of each int64 column: small and large varints, negatives
    (0, 2),
    (0, 10),
    (0, 100),
    (0, 1_000),
    (18, 91),
    (1990, 2025),
    (0, 100_000),
    (-1_000_000, 1_000_000),
    (0, 1 << 40),
    (-(1 << 62), 1 << 62),
)
STRING_VOCABS = (("s_00", 3), ("s_01", 12), ("s_02", 60), ("s_03", 1_000), ("s_04", 25_000), ("s_05", 250_000))
LARGE_VOCAB = 10_000  # vocabularies from this size on hold random tokens drawn with a Zipf skew
NULLABLE = ("f_01", "f_05", "f_09", "i_01", "i_04", "i_07", "s_02", "s_04", "flag")
NULL_FRACTION = 0.03
NOTE = "the Spark job builds the records in the JVM (spark-tfrecord); no Python runs on its row path"


RATIO_TARGET = Target(">=", 6.0)  # loop seconds / Spark end-to-end seconds, on 2 cores (issue 20)
WHOLE_TARGET = Target("<=", 1.5)  # the job's whole run / spark-tfrecord's own write's whole run (issue 20)
SMOKE = {"rows": 2_000, "num_shards": 2, "csv_mb": 1, "repeats": 1}  # --smoke: seconds, every code path


@dataclass(frozen=True)
class TableData:
    """The generated Parquet table."""

    folder: Path
    rows: int
    files: int
    input_bytes: int


@dataclass(frozen=True)
class LoopResult:
    """What the plain Python loop did."""

    records: int
    bytes_written: int
    seconds: float


@dataclass(frozen=True)
class SparkResult:
    """What the Spark job did, with the session start-up it is charged."""

    records: int
    rows_seen: int
    rejected: int
    bytes_written: int
    session_start_s: float
    job_s: float
    job_internal_s: float
    phases: dict[str, float]  # convert_table's own phases: count (with statistics), write, publish
    jvm_cpu_s: dict[str, float]  # CPU seconds of the JVM's threads during the job, by kind (Linux, local masters)
    read_back_s: float  # the train split as a DataFrame through spark-tfrecord, counted
    read_back_rows: int
    export_s: float  # the train split exported to Parquet (jobs.export_parquet)

    @property
    def end_to_end_s(self) -> float:
        """Session start-up plus the whole job."""
        return self.session_start_s + self.job_s


# --------------------------------------------------------------------------- data generation


def _rng(*parts: int) -> np.random.Generator:
    """The seeded generator of one part of the table (independent of every other part)."""
    return np.random.default_rng([SEED, *parts])


def _null_mask(name: str, rng: np.random.Generator, rows: int) -> np.ndarray | None:
    """Where column `name` is null (NULL_FRACTION of the rows), or None for a column without nulls."""
    return rng.random(rows) < NULL_FRACTION if name in NULLABLE else None


def vocabulary(name: str, size: int) -> pa.Array:
    """The values of string column `name`: readable words for small vocabularies, random tokens for large ones."""
    if size < LARGE_VOCAB:
        return pa.array([f"{name}_value_{k}" for k in range(size)])
    tokens = _rng(zlib.crc32(name.encode())).integers(0, 1 << 48, size)
    return pa.array([f"{int(token):012x}" for token in tokens])


def _float_column(index: int, rng: np.random.Generator, rows: int) -> np.ndarray:
    """Float column `index`: normal, uniform, log-normal or exponential values by turns."""
    kind = index % 4
    if kind == 0:
        return rng.normal(0.0, 1.0 + index, rows)
    if kind == 1:
        return rng.uniform(0.0, 1000.0, rows)
    if kind == 2:
        return np.round(rng.lognormal(3.0, 1.0, rows), 2)
    return rng.exponential(5.0, rows)


def _string_column(size: int, rng: np.random.Generator, rows: int) -> np.ndarray:
    """Indices into a vocabulary of `size`: uniform for small vocabularies, Zipf-skewed for large ones."""
    if size < LARGE_VOCAB:
        return rng.integers(0, size, rows)
    return np.minimum(rng.zipf(1.2, rows) - 1, size - 1)


def table_part(part: int, rows: int, vocabularies: dict[str, pa.Array]) -> pa.Table:
    """Rows of file number `part`: the 30 columns, nulls in the NULLABLE ones."""
    rng = _rng(part)
    columns: dict[str, pa.Array] = {}
    for index in range(NUM_FLOATS):
        name = f"f_{index:02d}"
        values = _float_column(index, rng, rows)
        columns[name] = pa.array(values, type=pa.float64(), mask=_null_mask(name, rng, rows))
    for index, (low, high) in enumerate(INT_RANGES):
        name = f"i_{index:02d}"
        values = rng.integers(low, high, rows, dtype=np.int64)
        columns[name] = pa.array(values, type=pa.int64(), mask=_null_mask(name, rng, rows))
    for name, size in STRING_VOCABS:
        indices = pa.array(_string_column(size, rng, rows), type=pa.int64(), mask=_null_mask(name, rng, rows))
        columns[name] = vocabularies[name].take(indices)
    columns["flag"] = pa.array(rng.random(rows) < 0.3, type=pa.bool_(), mask=_null_mask("flag", rng, rows))
    labels = rng.choice(len(LABEL_CLASSES), size=rows, p=LABEL_WEIGHTS)
    columns[LABEL] = pa.array(LABEL_CLASSES).take(pa.array(labels))
    return pa.table(columns)


def _marker(rows: int) -> dict[str, Any]:
    """What a complete generated table of `rows` rows records about itself."""
    return {"rows": rows, "files": NUM_FILES, "seed": SEED, "version": GENERATOR_VERSION}


def _read_folder(folder: Path) -> tuple[int, int]:
    """Read every Parquet file in `folder` once (warming the page cache); return (files, bytes)."""
    files = total = 0
    for path in sorted(folder.glob("*.parquet")):
        total += len(path.read_bytes())
        files += 1
    return files, total


def ensure_data(base: Path, rows: int) -> TableData:
    """The Parquet table of `rows` rows under `base`, generated unless a complete copy exists; warms it."""
    folder = base / "parquet"
    marker_path = base / MARKER
    if marker_path.exists():
        marker = json.loads(marker_path.read_text())
        files, total = _read_folder(folder)
        if marker.get("spec") == _marker(rows) and (files, total) == (marker["files"], marker["bytes"]):
            print(f"  reusing the {rows:,}-row table ({files} files, {total / MB:.1f} MB) in {folder}", flush=True)
            return TableData(folder, rows, files, total)
    shutil.rmtree(base, ignore_errors=True)
    folder.mkdir(parents=True)
    with timed() as generation:
        vocabularies = {name: vocabulary(name, size) for name, size in STRING_VOCABS}
        bounds = np.linspace(0, rows, NUM_FILES + 1).astype(int)
        for part in range(NUM_FILES):
            table = table_part(part, int(bounds[part + 1] - bounds[part]), vocabularies)
            pq.write_table(table, folder / f"part-{part:05d}.parquet", row_group_size=ROW_GROUP_ROWS)
    files, total = _read_folder(folder)
    marker_path.write_text(json.dumps({"spec": _marker(rows), "files": files, "bytes": total}))
    print(
        f"  generated a {rows:,}-row table ({files} files, {total / MB:.1f} MB) in {generation.seconds:.1f} s",
        flush=True,
    )
    return TableData(folder, rows, files, total)


# --------------------------------------------------------------------------- the plain loop


def feature_makers(tf: ModuleType, schema: pa.Schema) -> list[Callable[[Any], Any]]:
    """Per column, the `tf.train.Feature` builder of its type: int64 (ints, booleans), float or bytes."""

    def as_int(value: int) -> Any:
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))

    def as_float(value: float) -> Any:
        return tf.train.Feature(float_list=tf.train.FloatList(value=[value]))

    def as_bytes(value: str) -> Any:
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode("utf-8")]))

    makers = []
    for field in schema:
        if pa.types.is_integer(field.type) or pa.types.is_boolean(field.type):
            makers.append(as_int)
        elif pa.types.is_floating(field.type):
            makers.append(as_float)
        elif pa.types.is_string(field.type):
            makers.append(as_bytes)
        else:
            raise ValueError(f"column {field.name!r} has type {field.type}, which the loop does not convert")
    return makers


def filled_values(column: pa.Array) -> list[Any]:
    """The column's values with nulls replaced by the job's defaults: 0, 0.0, "" and False (as 0)."""
    if pa.types.is_boolean(column.type):
        column = pc.cast(column, pa.int64())
    if pa.types.is_integer(column.type):
        default: Any = 0
    elif pa.types.is_floating(column.type):
        default = 0.0
    else:
        default = ""
    return pc.fill_null(column, default).to_pylist()


def loop_split(row: int) -> str:
    """A simple stable 80/10/10 split by a CRC of the row number."""
    bucket = zlib.crc32(row.to_bytes(8, "little")) % 10
    return LOOP_SPLITS[0] if bucket < 8 else LOOP_SPLITS[1] if bucket == 8 else LOOP_SPLITS[2]


def run_loop(tf: ModuleType, data: TableData, output: Path, limit: int | None = None) -> LoopResult:
    """Convert the table (its first `limit` rows, in file order) into three TFRecord files, one row after another;
    timed from reading the Parquet."""
    shutil.rmtree(output, ignore_errors=True)
    output.mkdir(parents=True)
    with timed() as timing:
        writers = {split: tf.io.TFRecordWriter(str(output / f"{split}.tfrecord")) for split in LOOP_SPLITS}
        rows = 0
        try:
            for path in sorted(data.folder.glob("*.parquet")):
                parquet = pq.ParquetFile(path)
                names = parquet.schema_arrow.names
                makers = feature_makers(tf, parquet.schema_arrow)
                for batch in parquet.iter_batches(batch_size=LOOP_BATCH_ROWS):
                    if limit is not None and rows >= limit:
                        break
                    if limit is not None:
                        batch = batch.slice(0, limit - rows)
                    columns = [filled_values(batch.column(i)) for i in range(batch.num_columns)]
                    for values in zip(*columns):
                        feature = {name: make(value) for name, make, value in zip(names, makers, values)}
                        example = tf.train.Example(features=tf.train.Features(feature=feature))
                        writers[loop_split(rows)].write(example.SerializeToString())
                        rows += 1
        finally:
            for writer in writers.values():
                writer.close()
    return LoopResult(rows, _tfrecord_bytes(output), timing.seconds)


def _tfrecord_bytes(folder: Path) -> int:
    """Bytes of every TFRecord file under `folder`."""
    return sum(path.stat().st_size for path in folder.rglob("*.tfrecord*") if path.is_file())


# --------------------------------------------------------------------------- Spark


def run_spark(spark: Any, session_start_s: float, data: TableData, output: Path, num_shards: int) -> SparkResult:
    """Convert the table with the Spark job (overwriting `output`)."""
    options = TableConvertOptions(
        output=str(output),
        label=LABEL,
        input=str(data.folder),
        format="parquet",
        num_shards=num_shards,
        mode="overwrite",
        max_reject_fraction=0.2,
    )
    cpu_before = jvm_thread_cpu(spark)
    with timed() as job:
        summary: TableSummary = convert_table(spark, options)
    cpu_after = jvm_thread_cpu(spark)
    with timed() as read_back:
        read_back_rows = read_split(spark, str(output), "train").count()
    with timed() as export:
        export_parquet(spark, str(output), str(output.parent / "train_parquet"), "train", mode="overwrite")
    return SparkResult(
        records=sum(summary.records.values()),
        rows_seen=summary.rows_seen,
        rejected=sum(summary.rejected.values()),
        bytes_written=_tfrecord_bytes(output),
        session_start_s=session_start_s,
        job_s=job.seconds,
        job_internal_s=summary.seconds,
        phases=dict(summary.phases),
        jvm_cpu_s={kind: cpu_after[kind] - cpu_before.get(kind, 0.0) for kind in cpu_after},
        read_back_s=read_back.seconds,
        read_back_rows=read_back_rows,
        export_s=export.seconds,
    )


# --------------------------------------------------------------------------- figures and report


def figures(data: TableData, loop: LoopResult, spark: SparkResult, cores: int) -> dict[str, Any]:
    """All compared figures, with the target and whether it is met."""
    mb = data.input_bytes / MB
    derived = Figures({"ratio": RATIO_TARGET})
    derived.add("ratio", ratio(loop.seconds, spark.end_to_end_s))
    return {
        "rows": data.rows,
        "columns": NUM_FLOATS + len(INT_RANGES) + len(STRING_VOCABS) + 2,
        "parquet_files": data.files,
        "mb_read": mb,
        "cores": cores,
        "loop": {
            **asdict(loop),
            "rows_per_s": per_second(loop.records, loop.seconds),
            "mb_per_s": per_second(mb, loop.seconds),
        },
        "spark": {
            **asdict(spark),
            "end_to_end_s": spark.end_to_end_s,
            "rows_per_s": per_second(spark.records, spark.end_to_end_s),
            "mb_per_s": per_second(mb, spark.end_to_end_s),
        },
        **derived.as_dict(),
        "note": NOTE,
    }


def report(result: dict[str, Any]) -> Table:
    """The printed comparison."""
    loop, spark = result["loop"], result["spark"]
    table = Table(
        f"table: {result['rows']:,} rows x {result['columns']} columns, {result['parquet_files']} Parquet files"
        f" ({result['mb_read']:.1f} MB), {result['cores']} cores"
    )
    for label, side, seconds in (
        ("python loop", loop, loop["seconds"]),
        ("spark end-to-end", spark, spark["end_to_end_s"]),
    ):
        table.row(
            label,
            seconds_cell(seconds),
            rate_cell(side["rows_per_s"], "rows/s", 9),
            rate_cell(side["mb_per_s"], "MB/s", 7, 2),
            f"({side['bytes_written'] / MB:.1f} MB of TFRecords)",
        )
    table.line(
        f"session start {spark['session_start_s']:.2f} s + job {spark['job_s']:.2f} s"
        f" (convert_table's own clock {spark['job_internal_s']:.2f} s)",
        indent=6,
    )
    phases = "  ".join(f"{name} {seconds:.2f}" for name, seconds in spark["phases"].items())
    table.line(f"by phase (s): start {spark['session_start_s']:.2f}  {phases}", indent=6)
    if spark["jvm_cpu_s"]:
        used = ", ".join(f"{kind} {seconds:.1f}" for kind, seconds in sorted(spark["jvm_cpu_s"].items()))
        table.line(f"JVM CPU during the job (s): {used}", indent=6)
    table.line(
        f"train split back into a DataFrame: {spark['read_back_rows']:,} rows in {spark['read_back_s']:.2f} s;"
        f" exported to Parquet in {spark['export_s']:.2f} s",
        indent=6,
    )
    table.figure("ratio loop/spark", result["ratio"], RATIO_TARGET, "(>1: Spark is faster)")
    table.note(NOTE)
    if loop["records"] != spark["records"] or spark["rejected"]:
        table.warning(
            f"loop wrote {loop['records']:,} records, Spark wrote {spark['records']:,} of "
            f"{spark['rows_seen']:,} rows ({spark['rejected']:,} rejected)"
        )
    return table


# --------------------------------------------------------------------------- multiLine


def ensure_csv(data: TableData, path: Path, least_mb: float) -> tuple[int, int]:
    """One CSV file of the table's rows, repeated until it holds at least `least_mb` MB; (rows, bytes)."""
    from pyarrow import csv as pa_csv

    marker = path.with_suffix(".json")
    spec = {"table": _marker(data.rows), "least_mb": least_mb}
    if marker.exists() and path.exists():
        known = json.loads(marker.read_text())
        if known["spec"] == spec and path.stat().st_size == known["bytes"]:
            return known["rows"], known["bytes"]
    parts = sorted(data.folder.glob("*.parquet"))
    rows = 0
    with timed() as writing, pa_csv.CSVWriter(str(path), pq.read_schema(parts[0])) as writer:
        while path.stat().st_size < least_mb * MB or rows == 0:
            for part in parts:
                table = pq.read_table(part)
                writer.write_table(table)
                rows += table.num_rows
    size = path.stat().st_size
    marker.write_text(json.dumps({"spec": spec, "rows": rows, "bytes": size}))
    print(f"  wrote a {size / MB:,.0f} MB CSV of {rows:,} rows in {writing.seconds:.1f} s", flush=True)
    return rows, size


MULTILINE_REPEATS = 2


def run_multiline(spark: Any, data: TableData, csv: Path, least_mb: float, repeats: int) -> dict[str, Any]:
    """The CSV parsed as the table job reads it (every column as text, RFC 4180 quotes), with multiLine off
    and on; then the open-quote line scan that decides for a file Spark splits into several tasks."""
    from pyspark.sql import functions as F

    rows, size = ensure_csv(data, csv, least_mb)
    names = pq.read_schema(sorted(data.folder.glob("*.parquet"))[0]).names
    timings: dict[str, Any] = {"rows": rows, "mb": size / MB, "tasks": {}, "repeats": repeats}
    for repeat in range(repeats):  # the order alternates; the lowest of each (the machine may be shared)
        for mode in (False, True)[:: 1 if repeat % 2 == 0 else -1]:
            frame = text_frame(spark, str(csv), (), names, mode)
            with timed() as parsing:  # every column parsed: a count alone would let the CSV reader skip them
                counts = frame.agg(F.count(F.lit(1)), *[F.count(F.col(n)) for n in names]).first()
            key = f"multiline_{str(mode).lower()}"
            timings[f"{key}_s"] = min(timings.get(f"{key}_s", parsing.seconds), parsing.seconds)
            timings[f"{key}_rows"] = counts[0]
            timings["tasks"][str(mode).lower()] = frame.rdd.getNumPartitions()
    with timed() as scan:
        found = file_with_open_quote(spark, [csv.as_uri()], '"', '"', None)
    timings["scan_s"] = scan.seconds
    timings["scan_found"] = found
    return timings


def multiline_report(result: dict[str, Any], cores: int) -> Table:
    """The printed multiLine figures."""
    table = Table(
        f"multiLine: one CSV of {result['mb']:,.0f} MB, {result['rows']:,} rows, {cores} cores,"
        f" lowest of {result['repeats']} runs"
    )
    for mode, label in (("false", "line by line"), ("true", "multiLine")):
        table.row(
            label,
            seconds_cell(result[f"multiline_{mode}_s"]),
            f"every column parsed, {result['tasks'][mode]} tasks ({result[f'multiline_{mode}_rows']:,} rows)",
        )
    table.row("open-quote scan", seconds_cell(result["scan_s"]), f"found: {result['scan_found'] or 'none'}")
    table.figure(
        "ratio multiLine/lines",
        ratio(result["multiline_true_s"], result["multiline_false_s"]),
        None,
        "(>1: multiLine is slower)",
    )
    if result["multiline_true_rows"] != result["multiline_false_rows"]:
        table.warning("the two reads found different row counts")
    return table


# --------------------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    """The benchmark's options, plus the jobs' Spark options."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.convert_table",
        description="Time the Spark convert_table job against a plain single-process Python loop.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows of the generated table")
    parser.add_argument("--num-shards", type=int, default=8, help="shards per split of the Spark job")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="local[N] Spark cores (unless --master)")
    parser.add_argument("--csv-mb", type=float, default=1024.0, help="multiLine section: least size of its CSV")
    parser.add_argument(
        "--repeats", type=int, default=0,
        help=f"runs of each variant in the missing-values and multiLine sections, the lowest kept (default "
        f"{NULL_COST_REPEATS} and {MULTILINE_REPEATS})",
    )  # fmt: skip
    parser.add_argument(
        "--sections",
        choices=["all", "whole", "multiline"],
        default="all",
        help="all; whole: the loop, the job and spark-tfrecord's write in fresh processes; multiline alone",
    )
    parser.add_argument(
        "--loop-rows",
        type=int,
        default=0,
        help="whole: the loop converts only the first N rows and its time for the table is projected from its rate",
    )
    parser.add_argument(
        "--whole-rounds",
        type=int,
        default=1,
        help="whole: run each pair (the job, the write, the floor) this many times, alternated; the ratios printed "
        "and checked are the medians of the rounds' own ratios (single runs move by more than 10%% on a shared VM)",
    )
    parser.add_argument("--child", choices=CHILDREN, help=argparse.SUPPRESS)  # one whole run, in its own process
    parser.add_argument("--child-shards", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--child-output", help=argparse.SUPPRESS)
    add_run_arguments(parser, "convert_table", "generated data, outputs, results.json")
    add_spark_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Generate the table, run the loop and the Spark job on it, print and save the figures."""
    parser = build_parser()
    with benchmark_run(parser, argv, "convert_table", SMOKE, {"rows": NUM_FILES, "cores": 1, "num_shards": 1}) as args:
        return measure(args)


def measure(args: argparse.Namespace) -> int:
    """The benchmark proper, in `args.workdir`."""
    base = args.workdir / f"table-{args.rows}"
    if args.child:
        return run_child(args, base / "parquet")

    print(f"Preparing data in {args.workdir}", flush=True)
    data = ensure_data(base, args.rows)
    if args.sections == "whole":
        tf = import_tensorflow()
        loop = run_loop(tf, data, base / "loop_out", args.loop_rows or None)
        whole = whole_runs(args, data, base)
        result = whole_figures(data, loop, whole, args.cores, args.num_shards)
        whole_report(result).print()
        write_results(args, cores=args.cores, master=args.master, num_shards=args.num_shards, whole=result)
        return 0

    if args.sections == "multiline":
        spark, _ = start_spark(args, "benchmark_convert_table", f"local[{args.cores}]")
        try:
            multiline = run_multiline(spark, data, base / "table.csv", args.csv_mb, args.repeats or MULTILINE_REPEATS)
        finally:
            spark.stop()
        multiline_report(multiline, args.cores).print()
        write_results(args, cores=args.cores, master=args.master, multiline=multiline)
        return 0
    tf = import_tensorflow()
    spark, session_start_s = start_spark(args, "benchmark_convert_table", f"local[{args.cores}]", tfrecord=True)
    print(
        f"Spark {spark.version} on {args.master}: session started in {session_start_s:.2f} s; that start-up is "
        "counted in the Spark end-to-end time.\n",
        flush=True,
    )
    try:
        loop = run_loop(tf, data, base / "loop_out")
        spark_result = run_spark(spark, session_start_s, data, base / "spark_out", args.num_shards)
        spark.stop()  # the whole runs start their own; this one starts again for the sections after them
        whole = whole_runs(args, data, base)
        spark, _ = start_spark(args, "benchmark_convert_table", args.master, tfrecord=True)
        nulls = null_cost(tf, spark, data, base, args.num_shards, args.repeats or NULL_COST_REPEATS)
        multiline = run_multiline(spark, data, base / "table.csv", args.csv_mb, args.repeats or MULTILINE_REPEATS)
    except ConversionError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        spark.stop()
    result = figures(data, loop, spark_result, args.cores)
    report(result).print()
    whole_result = whole_figures(data, loop, whole, args.cores, args.num_shards)
    whole_report(whole_result).print()
    null_report(nulls).print()
    multiline_report(multiline, args.cores).print()

    write_results(
        args,
        cores=args.cores,
        master=args.master,
        num_shards=args.num_shards,
        spark_session_start_s=session_start_s,
        table=result,
        whole=whole_result,
        nulls=nulls,
        multiline=multiline,
    )
    return 0


# --------------------------------------------------------------------------- whole runs, each in a fresh process

CHILDREN = ("job", "baseline", "floor")
CHILD_RESULT = "CHILD_RESULT "  # the line a child prints its figures on, as JSON


def run_child(args: argparse.Namespace, source: Path) -> int:
    """One whole run in this (fresh) process: start Spark as the job does, then the table job (`--child job`,
    default options or `--child-shards` shards per split) or spark-tfrecord's own write into `--child-shards`
    files (`--child baseline`), or that write after one read of the source handed to Python as the job's survey
    reads it (`--child floor`); print its figures on one `CHILD_RESULT` line."""
    from jobs.spark_cli import spark_session

    output = Path(args.child_output)
    shutil.rmtree(output, ignore_errors=True)
    args.master = args.master or f"local[{args.cores}]"
    with timed() as start:
        spark = spark_session(args, "convert_table", tfrecord=True)
        spark.sparkContext.setLogLevel("ERROR")
    figures: dict[str, Any] = {"start_s": start.seconds}
    with timed() as work:
        if args.child == "job":
            options = TableConvertOptions(
                output=str(output), label=LABEL, input=str(source), format="parquet",
                num_shards=args.child_shards or None, max_reject_fraction=0.2,
            )  # fmt: skip
            summary = convert_table(spark, options)
            figures.update(phases=summary.phases, shards=sum(summary.shards.values()))
            figures["records"] = sum(summary.records.values())
        else:
            if args.child == "floor":
                with timed() as read:
                    survey_read(spark.read.parquet(str(source)))
                figures["survey_read_s"] = read.seconds
            rows = writable(spark.read.parquet(str(source))).repartition(args.child_shards)
            rows.write.format("tfrecord").option("recordType", "Example").save(str(output))
            figures.update(shards=args.child_shards, records=None)
    figures["work_s"] = work.seconds
    figures["jvm_cpu_s"] = jvm_thread_cpu(spark)  # tasks, JIT compilers, GC, other: where a fresh JVM's CPU went
    figures["bytes_written"] = sum(p.stat().st_size for p in output.rglob("*") if p.is_file() and "tfrecord" in p.name)
    spark.stop()
    print(CHILD_RESULT + json.dumps(figures), flush=True)
    return 0


def survey_read(frame: Any) -> None:
    """What the job's survey costs before any statistics: every row read, hashed and given its split, every column
    handed to a Python worker by `mapInArrow` (numbers as doubles, strings, null flags of the rest), which drops
    them. The floor of a survey that reads the source once more and computes its figures in Python."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    from conversion.options import DEFAULT_SPLITS
    from conversion.splits import with_split

    numeric, strings, others = [], [], []
    for field in frame.schema.fields:
        column = F.col(f"`{field.name}`")
        if isinstance(field.dataType, T.NumericType):
            numeric.append(column.cast("double"))
        elif isinstance(field.dataType, T.StringType):
            strings.append(column)
        else:
            others.append(column.isNull())
    hashed = frame.withColumn("_h", F.xxhash64(*[F.col(f"`{c}`") for c in frame.columns]))
    hashed = with_split(hashed, F.col("_h").cast("string"), DEFAULT_SPLITS, "_split")
    handed = hashed.select(F.col("_split"), F.col("_h"), *numeric, *strings, *others)
    handed.mapInArrow(_dropped, "n long").write.format("noop").mode("overwrite").save()


def _dropped(batches: Any) -> Any:
    """A `mapInArrow` function that reads its batches and returns nothing."""
    for _ in batches:
        pass
    return iter(())


def writable(frame: Any) -> Any:
    """`frame` as spark-tfrecord writes it: booleans (which it refuses) as integers, the rest as it is."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    return frame.select(
        *[
            F.col(f.name).cast("int").alias(f.name) if isinstance(f.dataType, T.BooleanType) else F.col(f.name)
            for f in frame.schema.fields
        ]
    )


def whole_run(args: argparse.Namespace, child: str, shards: int, output: Path) -> dict[str, Any]:
    """Run one child process; its figures and the process's whole time (Python, Spark start, work, stop)."""
    command = [sys.executable, "-m", "benchmarks.convert_table", "--child", child, "--child-shards", str(shards)]
    command += ["--child-output", str(output), "--rows", str(args.rows), "--workdir", str(args.workdir)]
    command += ["--cores", str(args.cores)] + (["--master", args.master] if args.master else [])
    for item in args.conf:
        command += ["--conf", item]
    with timed() as whole:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith(CHILD_RESULT)]
    if done.returncode != 0 or not lines:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise ConversionError(f"the {child} run ended with status {done.returncode}: {tail}")
    return {**json.loads(lines[-1][len(CHILD_RESULT) :]), "whole_s": whole.seconds}


def whole_runs(args: argparse.Namespace, data: TableData, base: Path) -> dict[str, Any]:
    """The job with default options and with `--num-shards`, each then spark-tfrecord's write into as many shards
    and the floor (after one untimed write; a smoke run: the `--num-shards` pair alone), `--whole-rounds` times in
    turn; per variant the median round's figures (by its job/write ratio) and every round's."""
    runs: dict[str, Any] = {}
    variants = (("default", 0), (f"num_shards_{args.num_shards}", args.num_shards))
    if not args.smoke:  # the first Spark process after a while reads the JDK's, Spark's and the jar's files from disk
        print("  whole runs: one untimed run first (spark-tfrecord's write), so no timed run pays a cold disk cache")
        whole_run(args, "baseline", args.num_shards, base / "whole_warmup")
    for name, shards in variants[1:] if args.smoke else variants:  # a smoke run: two processes, not four
        rounds = []
        for number in range(max(1, args.whole_rounds)):
            label = f" (round {number + 1} of {args.whole_rounds})" if args.whole_rounds > 1 else ""
            print(f"  whole runs: the job ({name}){label}...", flush=True)
            job = whole_run(args, "job", shards, base / f"whole_{name}")
            print(f"    {json.dumps(job)}", flush=True)
            print(f"  whole runs: spark-tfrecord's write into {job['shards']} shards...", flush=True)
            baseline = whole_run(args, "baseline", job["shards"], base / f"whole_{name}_baseline")
            print(f"    {json.dumps(baseline)}", flush=True)
            one = {"job": job, "baseline": baseline}
            if not args.smoke:
                print("  whole runs: the same write after the survey's read alone (the floor)...", flush=True)
                one["floor"] = whole_run(args, "floor", job["shards"], base / f"whole_{name}_floor")
                print(f"    {json.dumps(one['floor'])}", flush=True)
            rounds.append(one)
        by_ratio = sorted(rounds, key=lambda r: _ratio_of(r, "job", "baseline"))
        runs[name] = {**by_ratio[(len(rounds) - 1) // 2], "rounds": rounds}  # the median round's figures, and all
    return runs


def _ratio_of(one: dict[str, Any], upper: str, lower: str) -> float:
    """One round's whole-run ratio of two of its processes (`job`, `baseline`, `floor`)."""
    return ratio(one[upper]["whole_s"], one[lower]["whole_s"])


def whole_figures(
    data: TableData, loop: LoopResult, whole: dict[str, Any], cores: int, num_shards: int
) -> dict[str, Any]:
    """The whole runs' figures: each job against its baseline, and against the loop."""
    loop_s = loop.seconds * data.rows / loop.records  # projected from its rate when it converted fewer rows
    out: dict[str, Any] = {
        "rows": data.rows,
        "cores": cores,
        "loop_rows": loop.records,
        "loop_measured_s": loop.seconds,
        "loop_s": loop_s,
        "runs": whole,
    }
    for name, run in whole.items():
        rounds = run.get("rounds") or [run]
        ratios = [_ratio_of(r, "job", "baseline") for r in rounds]
        out[f"ratio_job_baseline_{name}"] = statistics.median(ratios)
        out[f"ratios_job_baseline_{name}"] = ratios
        out[f"ratio_loop_job_{name}"] = statistics.median(ratio(loop_s, r["job"]["whole_s"]) for r in rounds)
        if "floor" in run:
            out[f"ratio_floor_baseline_{name}"] = statistics.median(_ratio_of(r, "floor", "baseline") for r in rounds)
            out[f"ratio_job_floor_{name}"] = statistics.median(_ratio_of(r, "job", "floor") for r in rounds)
    return out


def whole_report(result: dict[str, Any]) -> Table:
    """The printed whole runs."""
    table = Table(
        f"whole runs, each a fresh process with its own Spark start: {result['rows']:,} rows x 30 columns, "
        f"{result['cores']} cores"
    )
    measured = (
        "measured"
        if result["loop_rows"] == result["rows"]
        else f"projected from {result['loop_rows']:,} rows in {result['loop_measured_s']:.2f} s"
    )
    table.row("python loop", seconds_cell(result["loop_s"]), f"one process, tf.train.Example per row ({measured})")
    for name, run in result["runs"].items():
        job, baseline = run["job"], run["baseline"]
        table.row(
            f"job, {name.replace('_', ' ')}",
            seconds_cell(job["whole_s"]),
            f"{job['shards']} shards, {job['bytes_written'] / MB:.1f} MB",
        )
        phases = "  ".join(f"{phase} {seconds:.2f}" for phase, seconds in job["phases"].items())
        rest = job["whole_s"] - job["start_s"] - job["work_s"]
        table.line(f"by phase (s): start {job['start_s']:.2f}  {phases}  (python and stop {rest:.2f})", indent=6)
        for who, child in (("job", job), ("write", baseline)):
            cpu = "  ".join(f"{kind} {seconds:.1f}" for kind, seconds in sorted(child.get("jvm_cpu_s", {}).items()))
            if cpu:
                table.line(f"JVM CPU of the {who} (s): {cpu}", indent=6)
        table.row(
            "  spark-tfrecord's write",
            seconds_cell(baseline["whole_s"]),
            f"repartition({baseline['shards']}).write.format('tfrecord'): start {baseline['start_s']:.2f} s, "
            f"write {baseline['work_s']:.2f} s, {baseline['bytes_written'] / MB:.1f} MB",
        )
        ratios = result.get(f"ratios_job_baseline_{name}", [])
        rounds = (
            f"median of {len(ratios)} rounds: " + ", ".join(f"{r:.2f}" for r in ratios) + "; "
            if len(ratios) > 1
            else ""
        )
        table.figure(
            "  ratio job/write",
            result[f"ratio_job_baseline_{name}"],
            WHOLE_TARGET,
            f"(whole runs; {rounds}<1.5 wanted)",
        )
        table.figure("  ratio loop/job", result[f"ratio_loop_job_{name}"], RATIO_TARGET, "(>1: Spark is faster)")
        if "floor" in run:
            floor = run["floor"]
            table.row(
                "  the floor",
                seconds_cell(floor["whole_s"]),
                f"the same write after one read handed to Python, dropped there (survey_read, "
                f"{floor['survey_read_s']:.2f} s): {result[f'ratio_floor_baseline_{name}']:.2f}x the write; "
                f"the job {result[f'ratio_job_floor_{name}']:.2f}x it",
            )
    return table


# --------------------------------------------------------------------------- missing values: left out or filled

NULL_COST_FRACTION = 0.2  # of every column but the label, by a hash of the row: the same rows for both runs
NULL_POLICIES = ("keep", "fill")  # left out of the record (the default) | written as the default
NULL_COST_REPEATS = 3  # each policy in turn (the order alternates), the lowest of each: the machine may be shared


def with_nulls(spark: Any, data: TableData, folder: Path) -> Path:
    """The generated table with NULL_COST_FRACTION of each column's values (but the label's) set to null,
    as Parquet in `folder` (written once per row count)."""
    from pyspark.sql import functions as F

    if (folder / "_SUCCESS").exists():
        return folder
    table = spark.read.parquet(str(data.folder))
    row = F.xxhash64(*[F.col(c) for c in table.columns])
    columns = [
        F.col(c)
        if c == LABEL
        else F.when(F.pmod(F.xxhash64(row, F.lit(c)), F.lit(1000)) < NULL_COST_FRACTION * 1000, None)
        .otherwise(F.col(c))
        .alias(c)
        for c in table.columns
    ]
    table.select(*columns).write.mode("overwrite").parquet(str(folder))
    return folder


def _parse_seconds(tf: ModuleType, output: Path) -> tuple[float, int]:
    """Seconds to parse the train split with the manifest's spec (defaults where a feature is left out), records."""
    from dataset.versions import read_manifest

    manifest = read_manifest(str(output))
    spec = manifest.tf_feature_spec()
    files = [str(output / f.path) for f in manifest.split("train").files]
    records = 0
    with timed() as timing:
        for batch in tf.data.TFRecordDataset(files).batch(4096).map(lambda b: tf.io.parse_example(b, spec)):
            records += int(batch[LABEL].shape[0])
    return timing.seconds, records


def null_cost(tf: ModuleType, spark: Any, data: TableData, base: Path, num_shards: int, repeats: int) -> dict[str, Any]:
    """The same table with nulls converted with them left out and with them filled: job seconds, bytes, and
    seconds for tf.data to parse the train split (where readers supply the defaults)."""
    source = with_nulls(spark, data, base / f"parquet_nulls_{int(NULL_COST_FRACTION * 100)}")
    runs: dict[str, Any] = {}
    for repeat in range(repeats):
        for policy in NULL_POLICIES[:: 1 if repeat % 2 == 0 else -1]:
            output = base / f"spark_out_nulls_{policy}"
            options = TableConvertOptions(
                output=str(output), label=LABEL, input=str(source), format="parquet", num_shards=num_shards,
                mode="overwrite", max_reject_fraction=0.2, null_policy=policy,
            )  # fmt: skip
            with timed() as job:
                summary = convert_table(spark, options)
            parse_s, parsed = _parse_seconds(tf, output)
            run = {
                "records": sum(summary.records.values()),
                "job_s": job.seconds,
                "count_s": summary.phases.get("count", 0.0),
                "write_s": summary.phases.get("write", 0.0),
                "bytes_written": _tfrecord_bytes(output),
                "parse_train_s": parse_s,
                "parsed_records": parsed,
            }
            best = runs.setdefault(policy, run)
            for figure in ("job_s", "count_s", "write_s", "parse_train_s"):
                best[figure] = min(best[figure], run[figure])
    return {"null_fraction": NULL_COST_FRACTION, "rows": data.rows, "repeats": repeats, "runs": runs}


def null_report(result: dict[str, Any]) -> Table:
    """The printed comparison of leaving nulls out against filling them."""
    keep, fill = result["runs"]["keep"], result["runs"]["fill"]
    table = Table(
        f"missing values: {result['rows']:,} rows, {result['null_fraction']:.0%} of every non-label value null,"
        f" left out (keep) vs filled (fill), lowest of {result['repeats']} runs"
    )
    for policy, run in result["runs"].items():
        table.row(
            policy,
            seconds_cell(run["job_s"]),
            f"(count {run['count_s']:.2f} s, write {run['write_s']:.2f} s)",
            f"{run['bytes_written'] / MB:.1f} MB of TFRecords",
            f"tf.data parses the train split in {run['parse_train_s']:.2f} s",
        )
    table.figure("ratio keep/fill job", ratio(keep["job_s"], fill["job_s"]), None, "(<1: leaving nulls out is faster)")
    table.figure("ratio keep/fill bytes", ratio(keep["bytes_written"], fill["bytes_written"]))
    if keep["records"] != fill["records"]:
        table.warning(f"keep wrote {keep['records']:,} records, fill {fill['records']:,}")
    return table


if __name__ == "__main__":
    sys.exit(main())
