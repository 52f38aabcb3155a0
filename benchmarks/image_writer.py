"""Benchmark: where image records are written. The job's Python writer (each task reads, checks, encodes and writes
its shards itself) against the alternative of handing the checked image rows to spark-tfrecord.

    python -m benchmarks.image_writer                    # both workloads of benchmarks.convert_images
    python -m benchmarks.image_writer --workload photos  # 4,000 ~100 KB JPEGs resized to 224x224
    python -m benchmarks.image_writer --smoke            # tiny sizes in a temporary folder

Both run in one Spark session on the same generated trees (`benchmarks.convert_images` generates and reuses them)
with the same plan (`conversion.images.plan`: splits, shards, two tasks per core):

* **python writer**: `convert_images`, the job as shipped (manifest and commit included);
* **spark-tfrecord**: the same tasks read and check the same files (`check_image`) but return each image's row
  (the nine image features and its shard number) instead of writing it; Spark turns the rows into a DataFrame and
  spark-tfrecord encodes and writes them, one folder per shard (`partitionBy`; Spark sorts each task's rows by
  shard). No manifest, no renames into shard names, no commit: a lower bound of that design's cost.

Each is run twice and the faster run is kept; the session start is counted in neither.
"""

from __future__ import annotations

if not __package__:  # run by path, `python benchmarks/image_writer.py`: import as `-m` does
    import _repo_root  # noqa: F401

import argparse
import hashlib
import os
import shutil
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks.convert_images import SMOKE as IMAGE_SMOKE
from benchmarks.convert_images import Workload, ensure_data, workloads
from benchmarks.harness import (
    MB,
    Table,
    add_run_arguments,
    benchmark_run,
    per_second,
    ratio,
    start_spark,
    timed,
    write_results,
)
from conversion.images.check import Rejected, check_image
from conversion.images.convert import TASKS_PER_CORE, convert_images
from conversion.images.discovery import discover
from conversion.images.options import ImageConvertOptions, ImageTransform
from conversion.images.plan import group_into_tasks, plan_shards
from dataset import features as F
from dataset.fs import list_files
from jobs.spark_cli import add_spark_arguments

RUNS = 2
SMOKE = {"small_files": IMAGE_SMOKE["small_files"], "photos": IMAGE_SMOKE["photos"], "num_shards": 2}

Task = list[tuple[int, list[tuple[str, int]]]]  # (global shard number, [(relpath, label id)]) per shard of a task


def image_rows(root: str, labels: tuple[str, ...], transform: ImageTransform, tasks: Iterator[Task]) -> Iterator[tuple]:
    """The checked image rows of a task's shards (runs on executors): the shard number, then the image features."""
    for task in tasks:
        for shard, files in task:
            for relpath, label_id in files:
                with open(os.path.join(root, relpath), "rb") as handle:
                    data = handle.read()
                try:
                    image = check_image(data, transform)
                except Rejected:
                    continue
                yield (
                    shard,
                    image.encoded,
                    image.format,
                    image.height,
                    image.width,
                    image.channels,
                    label_id,
                    labels[label_id],
                    relpath,
                    hashlib.sha256(image.encoded).hexdigest(),
                )


def row_schema() -> Any:
    from pyspark.sql import types as T

    return T.StructType(
        [
            T.StructField("shard", T.IntegerType(), False),
            T.StructField(F.IMAGE_ENCODED, T.BinaryType(), False),
            T.StructField(F.IMAGE_FORMAT, T.StringType(), False),
            T.StructField(F.IMAGE_HEIGHT, T.LongType(), False),
            T.StructField(F.IMAGE_WIDTH, T.LongType(), False),
            T.StructField(F.IMAGE_CHANNELS, T.LongType(), False),
            T.StructField(F.IMAGE_LABEL_ID, T.LongType(), False),
            T.StructField(F.IMAGE_LABEL_TEXT, T.StringType(), False),
            T.StructField(F.IMAGE_FILENAME, T.StringType(), False),
            T.StructField(F.IMAGE_SHA256, T.StringType(), False),
        ]
    )


def via_spark_tfrecord(spark: Any, images: Path, output: Path, options: ImageConvertOptions) -> None:
    """The same plan, with the checked rows written by spark-tfrecord."""
    sc = spark.sparkContext
    found = discover(list_files(str(images)), options.labels, options.split_from_folders)
    plans = plan_shards(found.candidates, found.labels, options)
    numbers = {(plan.split, plan.index): number for number, plan in enumerate(plans)}
    tasks = [
        [(numbers[plan.split, plan.index], [(f.relpath, f.label_id) for f in plan.files]) for plan in group]
        for group in group_into_tasks(plans, TASKS_PER_CORE * sc.defaultParallelism)
    ]
    rows = sc.parallelize(tasks, len(tasks)).mapPartitions(
        partial(image_rows, str(images), found.labels, options.transform)
    )
    frame = spark.createDataFrame(rows, row_schema())
    shutil.rmtree(output, ignore_errors=True)
    frame.write.format("tfrecord").option("recordType", "Example").partitionBy("shard").save(str(output))


def records_in(spark: Any, output: Path) -> int:
    return spark.read.format("tfrecord").option("recordType", "Example").load(str(output)).count()


def _best(run: Any) -> tuple[float, Any]:
    best: tuple[float, Any] | None = None
    for _ in range(RUNS):
        with timed() as timing:
            value = run()
        if best is None or timing.seconds < best[0]:
            best = (timing.seconds, value)
    assert best is not None
    return best


def measure_workload(spark: Any, workload: Workload, images: Path, base: Path, num_shards: int) -> dict[str, Any]:
    options = ImageConvertOptions(
        input=str(images),
        output=str(base / "python_writer"),
        num_shards=num_shards,
        mode="overwrite",
        transform=workload.transform,
        max_reject_fraction=0.05,
    )
    python_s, summary = _best(lambda: convert_images(spark, options))
    python_records = sum(summary.records.values())
    jvm_s, _ = _best(lambda: via_spark_tfrecord(spark, images, base / "spark_tfrecord", options))
    jvm_records = records_in(spark, base / "spark_tfrecord")
    if jvm_records != python_records:
        raise RuntimeError(f"spark-tfrecord wrote {jvm_records} records, the Python writer {python_records}")
    return {
        "images": python_records,
        "input_mb": summary.input_bytes / MB,
        "python_writer_s": python_s,
        "python_writer_images_per_s": per_second(python_records, python_s),
        "spark_tfrecord_s": jvm_s,
        "spark_tfrecord_images_per_s": per_second(jvm_records, jvm_s),
        "ratio": ratio(jvm_s, python_s),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.image_writer", description=__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=["small", "photos", "both"], default="both", help="what to run")
    parser.add_argument("--small-files", type=int, default=50_000, help="number of small PNGs")
    parser.add_argument("--photos", type=int, default=4_000, help="number of ~100 KB photos")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="local[N] Spark cores")
    parser.add_argument("--num-shards", type=int, default=16, help="shards per split")
    add_run_arguments(parser, "image_writer", "generated data (shared with convert_images), outputs, results.json")
    add_spark_arguments(parser)
    least = {"small_files": 1, "photos": 1, "cores": 1, "num_shards": 1}
    with benchmark_run(parser, argv, "image_writer", SMOKE, least) as args:
        chosen = workloads(args)
        data = {w.name: ensure_data(w, args.workdir / w.folder_name, args.cores)[0] for w in chosen}
        spark, _ = start_spark(args, "benchmark_image_writer", f"local[{args.cores}]", tfrecord=True)
        results = {}
        try:
            for workload in chosen:
                base = args.workdir / workload.folder_name
                result = measure_workload(spark, workload, data[workload.name], base, args.num_shards)
                results[workload.name] = result
                table = Table(f"image records written by: {workload.title}")
                table.row("images", f"{result['images']:,}", f"({result['input_mb']:.1f} MB read)")
                for label, key in (("python writer", "python_writer"), ("spark-tfrecord", "spark_tfrecord")):
                    table.row(label, f"{result[key + '_s']:.2f} s", f"{result[key + '_images_per_s']:,.0f} images/s")
                table.figure("ratio jvm/python", result["ratio"], None, "(>1: the Python writer is faster)")
                table.note(f"best of {RUNS} runs each, session start in neither")
                table.print()
        finally:
            spark.stop()
        write_results(args, cores=args.cores, num_shards=args.num_shards, runs=RUNS, workloads=results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
