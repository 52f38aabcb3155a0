"""A table conversion reads its source twice: once to survey it (counts, statistics, the label's task and
counts, rows per shard) and once to write it, with `--num-shards` or without, whatever the label.

The reads are counted in the query plans Spark executed (its SQL status store, as the UI shows them): each
file-source scan node whose location is the source folder is one read.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from conversion.tables.convert import convert_table
from conversion.tables.input_splits import MIN_PARTITIONS, balanced_input_splits
from conversion.tables.options import TableConvertOptions
from conversion.tables.shards import bucket_values, shard_groups, spark_hash_long
from dataset.tfrecord import count_frames
from tests.conftest import needs_tfrecord_jar

pytestmark = needs_tfrecord_jar  # the records are written by spark-tfrecord

ROWS = 400
_SCAN = re.compile(r"^\((\d+)\) Scan (\w+)", re.MULTILINE)


def source_reads(spark: SparkSession, folder: Path, run) -> list[str]:
    """Run `run()`; the read schema of every scan of `folder` in the queries it executed, in order."""
    store = spark._jsparkSession.sharedState().statusStore()  # noqa: SLF001 (Spark's SQL status store)
    before = store.executionsList().size()
    run()
    spark.sparkContext._jsc.sc().listenerBus().waitUntilEmpty()  # noqa: SLF001 (the store is fed asynchronously)
    executions = store.executionsList()
    reads = []
    for i in range(before, executions.size()):
        plan = executions.apply(i).physicalPlanDescription()
        for match in _SCAN.finditer(plan):
            details = plan[match.end() : plan.find("\n\n", match.end())]
            if f"file:{folder}]" in details or f"file:{folder}," in details:
                reads.append(re.search(r"^ReadSchema: (.*)$", details, re.MULTILINE).group(1))
    return reads


@pytest.fixture(scope="module")
def source(spark, tmp_path_factory) -> Path:
    """400 rows in 2 Parquet files: an integer label of 3 values, a text label, a key, numbers, text, a list."""
    folder = tmp_path_factory.mktemp("reads") / "source"
    spark.range(ROWS).selectExpr(
        "id",
        "CAST(id % 3 AS INT) AS label",
        "CASE id % 4 WHEN 0 THEN 'red' WHEN 1 THEN 'green' ELSE 'blue' END AS colour",
        "IF(id % 11 = 0, NULL, id * 1.5) AS x",
        "CAST(id % 7 AS STRING) AS s",
        "array(id, id + 1) AS pair",
    ).repartition(2).write.parquet(str(folder))
    return folder


def converted(spark, source: Path, out: Path, **options) -> tuple[list[str], dict]:
    """Convert `source` into `out`; the scans of the source and the manifest."""
    opts = TableConvertOptions(output=str(out), input=str(source), format="parquet", **{"label": "label", **options})
    reads = source_reads(spark, source, lambda: convert_table(spark, opts))
    return reads, json.loads((out / "manifest.json").read_text())


def records_per_shard(out: Path, manifest: dict) -> dict[str, tuple[int, int]]:
    """Shard path → (records the manifest says, frames in the file)."""
    return {
        f["path"]: (f["num_records"], count_frames((out / f["path"]).read_bytes(), f["path"]))
        for split in manifest["splits"].values()
        for f in split["files"]
    }


@pytest.mark.parametrize(
    "options",
    [
        {"num_shards": 2},  # shard counts from the survey's buckets (mod 2)
        {"num_shards": 3},
        {"num_shards": 64},  # more shards than a split's rows: the splits' shards counted on the write
        {"target_shard_mb": 3 / 1024},  # sized: 7 or 8 train shards wanted, 8 (a power of two) made
        {"label": "colour"},  # a text label: --task auto from an approximate distinct count
        {"key": "id", "task": "regression"},
    ],
    ids=["shards2", "shards3", "shards64", "sized", "text-label", "keyed-regression"],
)
def test_a_table_job_reads_its_source_once_besides_the_write(spark, source, tmp_path, options):
    reads, manifest = converted(spark, source, tmp_path / "out", **options)
    everything = spark.read.parquet(str(source)).schema.simpleString()
    assert reads == [everything, everything]  # the survey needs every column: the row hash and null counts
    shards = records_per_shard(tmp_path / "out", manifest)
    assert all(listed == found for listed, found in shards.values()), shards
    assert sum(n for n, _ in shards.values()) == ROWS
    counts = {split: len(info["files"]) for split, info in manifest["splits"].items()}
    records = {split: info["num_records"] for split, info in manifest["splits"].items()}
    if "num_shards" in options:
        assert counts == {split: min(options["num_shards"], n) for split, n in records.items()}
    elif "target_shard_mb" in options:
        assert_power_of_two_shards(counts, records)


def assert_power_of_two_shards(counts: dict[str, int], records: dict[str, int]) -> None:
    """Shards sized by --target-shard-mb 3/1024 (3 KB) over 6 columns."""
    # rows x 6 columns x 12 bytes (the size guess) / 3 KB, rounded up to a power of two: train's about 320 rows
    # want 7 or 8 shards and get 8, the other splits' about 40 rows want 1 (or 2)
    wanted = {split: math.ceil(n * 6 * 12 / 3072) for split, n in records.items()}
    assert counts == {split: 1 << (n - 1).bit_length() for split, n in wanted.items()}
    assert counts["train"] == 8


def test_the_task_and_label_counts_come_from_the_survey(spark, source, tmp_path):
    reads, manifest = converted(spark, source, tmp_path / "int")
    assert len(reads) == 2
    assert manifest["table"]["task"] == "classification"  # 3 integer values
    assert manifest["labels"] == ["0", "1", "2"]
    found = {split: info["label_counts"] for split, info in manifest["splits"].items()}
    totals = {label: sum(c.get(label, 0) for c in found.values()) for label in ("0", "1", "2")}
    assert totals == {"0": 134, "1": 133, "2": 133}  # id % 3 over 0..399
    reads, manifest = converted(spark, source, tmp_path / "many", label="id")  # 400 integer values
    assert len(reads) == 2
    assert manifest["table"]["task"] == "regression" and manifest["labels"] == []


def test_bucket_values_are_spark_hash_partitions(spark):
    """The values `ordered` repartitions on, computed without Spark, land in the partition of their bucket."""
    values = [-(2**63), -1, 0, 1, 41, 2**31, 2**40 + 7, 2**63 - 1]
    found = spark.createDataFrame([(v,) for v in values], "v long").select(F.hash("v")).collect()
    assert [spark_hash_long(v) for v in values] == [r[0] for r in found]
    total = 24
    buckets = bucket_values(total)
    partitions = (
        spark.createDataFrame([(v,) for v in buckets], "v long")
        .repartition(total, "v")
        .select("v", F.spark_partition_id().alias("p"))
        .collect()
    )
    assert {r["v"]: r["p"] for r in partitions} == {v: i for i, v in enumerate(buckets)}


def test_the_job_reads_equal_files_in_tasks_that_end_together(spark, tmp_path):
    """8 equal Parquet files on 2 cores: Spark's own packing makes fewer tasks than files, not a multiple of the
    cores at every size; in the job, 8 (4 a core)."""
    folder = tmp_path / "eight"
    spark.range(8000).selectExpr("id", "CAST(id * 7 AS STRING) AS s").repartition(8).write.parquet(str(folder))

    def tasks() -> int:
        return spark.read.parquet(str(folder)).rdd.getNumPartitions()

    assert spark.sparkContext.defaultParallelism == 2
    plain = tasks()
    with balanced_input_splits(spark):
        assert tasks() == 8
        assert spark.conf.get(MIN_PARTITIONS) == "8"
    assert spark.conf.get(MIN_PARTITIONS, None) is None and tasks() == plain < 8
    spark.conf.set(MIN_PARTITIONS, "1")  # the session's own setting is the user's choice: left as it is
    try:
        with balanced_input_splits(spark):
            assert tasks() == 1
        assert spark.conf.get(MIN_PARTITIONS) == "1"
    finally:
        spark.conf.unset(MIN_PARTITIONS)


def test_shards_are_counted_in_groups_of_about_equal_bytes():
    assert shard_groups([5, 1, 4, 2, 3], 2) == [[0, 3, 1], [2, 4]]
    assert shard_groups([0, 0, 0], 4) == [[0], [1], [2]]
    assert shard_groups([7], 4) == [[0]]
    assert shard_groups([], 4) == []
