"""Datasets read back through the spark-tfrecord data source (the real jar), and exported to Parquet."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pyspark.sql import types as T

from conversion.tables.convert import convert_table
from conversion.tables.options import TableConvertOptions
from dataset.errors import DatasetError, SparkSetupError
from dataset.features import IMAGE_ENCODED, IMAGE_FILENAME, IMAGE_LABEL_ID, IMAGE_LABEL_TEXT
from dataset.layout import tf_compression
from dataset.spark_read import read_split
from dataset.versions import read_manifest
from jobs import export_parquet
from jobs.tfrecord_jar import (
    TFRECORD_JAR_ENV,
    installed_scala,
    scala_of_spark_version,
    tfrecord_jar_conf,
    tfrecord_package,
)
from tests.conftest import needs_tfrecord_jar
from tests.example_reader import parsed_like_tf

try:
    import tensorflow as tf
except ImportError:  # make test-spark4 (no TensorFlow): tests/example_reader.py reads the shards
    tf = None

REPO = Path(__file__).resolve().parents[1]


def tf_records(out, split: str) -> dict:
    """Every record of a split as tf.data parses it (without TensorFlow: as the independent reader
    gives it the same way): {key feature value: {feature: python value}}."""
    manifest = read_manifest(str(out))
    rows = {}
    for row in parsed_like_tf(out, split) if tf is None else _tf_parsed(out, split):
        key = row[manifest.key_feature] if manifest.key_feature else len(rows)
        rows[key.item() if isinstance(key, np.generic) else key] = row
    return rows


def _tf_parsed(out, split: str) -> list[dict]:
    manifest = read_manifest(str(out))
    spec = manifest.tf_feature_spec()
    files = [str(out / f.path) for f in manifest.split(split).files]
    rows = []
    for serialized in tf.data.TFRecordDataset(files, compression_type=tf_compression(manifest.compression)):
        parsed = tf.io.parse_single_example(serialized, spec)
        rows.append(
            {
                name: (tf.sparse.to_dense(value) if isinstance(value, tf.SparseTensor) else value).numpy()
                for name, value in parsed.items()
            }
        )
    return rows


@pytest.mark.skipif(tf is None, reason="compares the independent reader with TensorFlow")
@needs_tfrecord_jar
def test_the_independent_reader_parses_as_tensorflow_does(shapes_dataset, table_dataset):
    for out in (shapes_dataset, table_dataset):
        ours, theirs = parsed_like_tf(out, "train"), _tf_parsed(out, "train")
        assert len(ours) == len(theirs) > 0
        for mine, tfs in zip(ours, theirs):
            assert mine.keys() == tfs.keys()
            for name, value in mine.items():
                assert type(value) is type(tfs[name]) and np.shape(value) == np.shape(tfs[name]), name
                assert np.asarray(value).dtype == np.asarray(tfs[name]).dtype, name
                np.testing.assert_array_equal(value, tfs[name])


def spark_rows(frame, key: str) -> dict:
    return {row[key]: row.asDict() for row in frame.collect()}


def assert_image_rows_equal(spark_by_name: dict, tf_by_name: dict) -> None:
    assert len(spark_by_name) == len(tf_by_name) > 0
    assert set(spark_by_name) == {name.decode() for name in tf_by_name}
    for name, expected in tf_by_name.items():
        row = spark_by_name[name.decode()]
        assert isinstance(row[IMAGE_ENCODED], (bytes, bytearray))  # binary, not string
        assert bytes(row[IMAGE_ENCODED]) == expected[IMAGE_ENCODED]
        assert row[IMAGE_LABEL_ID] == expected[IMAGE_LABEL_ID]
        assert row[IMAGE_LABEL_TEXT].encode() == expected[IMAGE_LABEL_TEXT]
        for feature, value in expected.items():
            got = row[feature]
            assert (
                bytes(got) if isinstance(got, bytearray) else got.encode() if isinstance(got, str) else got
            ) == value


@needs_tfrecord_jar
def test_image_dataset_reads_back_as_tf_data_reads_it(spark, shapes_dataset):
    manifest = read_manifest(str(shapes_dataset))
    frame = read_split(spark, str(shapes_dataset))
    assert dict(frame.groupBy("split").count().collect()) == {k: v.num_records for k, v in manifest.splits.items()}
    assert dict(frame.dtypes)[IMAGE_ENCODED] == "binary"
    for split in manifest.splits:
        one = read_split(spark, str(shapes_dataset), split)
        assert one.schema == manifest.spark_schema()
        assert_image_rows_equal(spark_rows(one, IMAGE_FILENAME), tf_records(shapes_dataset, split))
    with pytest.raises(DatasetError, match="split 'nope' is not in the dataset"):
        read_split(spark, str(shapes_dataset), "nope")


ROWS = [
    # id, n, ratio, name, blob, tags, scores, label
    (1, 3, 0.5, "alpha", b"\x00\x01", ["a", "b"], [1.0, 2.0], "yes"),
    (2, -4, float("nan"), "beta", b"", [], [3.5, float("nan")], "no"),
    (3, 5, float("inf"), "", b"\xff\xfe", ["c"], [], "yes"),
    (4, 2**31 + 5, float("-inf"), "gamma", b"z" * 300, ["a"], [0.1, float("inf")], "no"),
    (5, 0, 1.0 / 3.0, "délta", b"\x80", ["b", "b"], [1e-30], "yes"),
]
SCHEMA = T.StructType(
    [
        T.StructField("id", T.LongType()),
        T.StructField("n", T.LongType()),
        T.StructField("ratio", T.DoubleType()),
        T.StructField("name", T.StringType()),
        T.StructField("blob", T.BinaryType()),
        T.StructField("tags", T.ArrayType(T.StringType())),
        T.StructField("scores", T.ArrayType(T.DoubleType())),
        T.StructField("label", T.StringType()),
    ]
)


def same_float(got: float, expected: float) -> bool:
    want = np.float32(expected)
    return bool(np.isnan(want) and math.isnan(got)) or np.float32(got) == want


@pytest.fixture(scope="module")
def table_dataset(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("table")
    spark.createDataFrame(ROWS, SCHEMA).coalesce(1).write.parquet(str(root / "rows.parquet"))
    out = root / "dataset"
    options = TableConvertOptions(
        output=str(out),
        label="label",
        input=str(root / "rows.parquet"),
        format="parquet",
        key="id",
        splits=(("train", 1.0),),
        num_shards=2,
        compression="gzip",
    )
    convert_table(spark, options)
    return out


def assert_table_rows_equal(by_id: dict) -> None:
    assert sorted(by_id) == [r[0] for r in ROWS]
    for row_id, n, ratio, name, blob, tags, scores, label in ROWS:
        row = by_id[row_id]
        assert row["n"] == n and row["name"] == name and row["label"] == label
        assert isinstance(row["blob"], (bytes, bytearray)) and bytes(row["blob"]) == blob
        assert isinstance(row["ratio"], float) and same_float(row["ratio"], ratio)
        assert list(row["tags"]) == tags
        assert len(row["scores"]) == len(scores) and all(map(same_float, row["scores"], scores))


@needs_tfrecord_jar
def test_table_dataset_reads_back_every_type(spark, table_dataset):
    manifest = read_manifest(str(table_dataset))
    assert manifest.compression == "gzip" and all(f.path.endswith(".gz") for f in manifest.split("train").files)
    frame = read_split(spark, str(table_dataset), "train")
    assert dict(frame.dtypes) == {
        "id": "bigint",
        "n": "bigint",
        "ratio": "float",
        "name": "string",
        "blob": "binary",
        "tags": "array<string>",
        "scores": "array<float>",
        "label": "string",
    }
    assert_table_rows_equal(spark_rows(frame, "id"))
    assert set(tf_records(table_dataset, "train")) == {r[0] for r in ROWS}


@needs_tfrecord_jar
def test_export_parquet_of_images_and_tables(spark, shapes_dataset, table_dataset, tmp_path, capsys):
    images = tmp_path / "images.parquet"
    assert export_parquet.main(["--data", str(shapes_dataset), "--output", str(images)]) == 0
    manifest = read_manifest(str(shapes_dataset))
    assert sorted(p.name for p in images.glob("split=*")) == sorted(f"split={s}" for s in manifest.splits)
    exported = spark.read.parquet(str(images))
    assert exported.count() == manifest.num_records
    for split in manifest.splits:
        rows = spark_rows(exported.where(exported.split == split).drop("split"), IMAGE_FILENAME)
        assert_image_rows_equal(rows, tf_records(shapes_dataset, split))

    table = tmp_path / "table.parquet"
    assert export_parquet.main(["--data", str(table_dataset), "--split", "train", "--output", str(table)]) == 0
    assert "wrote 5 records of train" in capsys.readouterr().out
    assert_table_rows_equal(spark_rows(spark.read.parquet(str(table)), "id"))

    # an existing output is refused, unless --mode overwrite
    assert export_parquet.main(["--data", str(table_dataset), "--split", "train", "--output", str(table)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: --output {table} already exists; pass --mode overwrite to replace it\n"
    args = ["--data", str(table_dataset), "--split", "train", "--output", str(table), "--mode", "overwrite"]
    assert export_parquet.main(args) == 0
    assert spark.read.parquet(str(table)).count() == 5


def test_export_parquet_bad_paths_and_splits_are_one_line(shapes_dataset, tmp_path, capsys):
    cases = [
        (["--data", str(tmp_path / "missing"), "--output", str(tmp_path / "o")], "does not exist"),
        (["--data", str(shapes_dataset), "--split", "nope", "--output", str(tmp_path / "o")], "split 'nope'"),
    ]
    for argv, message in cases:
        assert export_parquet.main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1
        assert not (tmp_path / "o").exists()


def test_jar_setting(tmp_path):
    jar = tmp_path / "spark-tfrecord_2.12-0.7.0.jar"
    with pytest.raises(SparkSetupError) as caught:
        tfrecord_jar_conf(None, None, "2.12", "3.5.1", {TFRECORD_JAR_ENV: str(jar)})
    assert str(caught.value) == (
        f"{TFRECORD_JAR_ENV}={jar} does not exist; point it at spark-tfrecord_2.12-0.7.0.jar (Scala 2.12), "
        "or unset it to get com.linkedin.sparktfrecord:spark-tfrecord_2.12:0.7.0 from Maven"
    )
    jar.write_bytes(b"PK")
    env = {TFRECORD_JAR_ENV: str(jar)}
    assert tfrecord_jar_conf("a.jar", None, "2.12", "3.5.1", env) == {"spark.jars": f"a.jar,{jar}"}
    assert tfrecord_jar_conf(None, None, "2.12", "3.5.1", {TFRECORD_JAR_ENV: f"file://{jar}"}) == {
        "spark.jars": f"file://{jar}"
    }
    remote = "s3a://bucket/jars/spark-tfrecord_2.13-0.7.0.jar"
    assert tfrecord_jar_conf(None, None, "2.13", "4.3.0", {TFRECORD_JAR_ENV: remote}) == {"spark.jars": remote}
    # unset: Maven coordinates with the Spark's Scala suffix
    for scala in ("2.12", "2.13"):
        assert tfrecord_jar_conf(None, "g:a:1", scala, "x", {}) == {
            "spark.jars.packages": f"g:a:1,{tfrecord_package(scala)}"
        }
    assert tfrecord_package("2.13") == "com.linkedin.sparktfrecord:spark-tfrecord_2.13:0.7.0"
    assert tfrecord_jar_conf("/x/spark-tfrecord.jar", None, "2.13", "4.3.0", {}) == {
        "spark.jars": "/x/spark-tfrecord.jar"
    }
    # a jar or coordinate for the other Scala version: one line, its URL's user info never shown
    how = (
        "set SPARK_TFRECORD_JAR=/path/to/spark-tfrecord_2.13-0.7.0.jar, or pass --packages "
        "com.linkedin.sparktfrecord:spark-tfrecord_2.13:0.7.0, or on Databricks install the Maven library "
        "com.linkedin.sparktfrecord:spark-tfrecord_2.13:0.7.0 (Scala 2.13)"
    )
    cases = [
        ({TFRECORD_JAR_ENV: str(jar)}, None, None, f"{TFRECORD_JAR_ENV} gives {jar.name}"),
        ({TFRECORD_JAR_ENV: "https://u:secret@host/j/spark-tfrecord_2.12-0.7.0.jar?t=x"}, None, None,
         f"{TFRECORD_JAR_ENV} gives spark-tfrecord_2.12-0.7.0.jar"),
        ({}, "/x/spark-tfrecord_2.12-0.7.0.jar", None, "--jars gives spark-tfrecord_2.12-0.7.0.jar"),
        ({}, None, "com.linkedin.sparktfrecord:spark-tfrecord_2.12:0.7.0",
         "--packages gives com.linkedin.sparktfrecord:spark-tfrecord_2.12:0.7.0"),
    ]  # fmt: skip
    for environ, jars, packages, given in cases:
        with pytest.raises(SparkSetupError) as caught:
            tfrecord_jar_conf(jars, packages, "2.13", "4.3.0", environ)
        assert (
            str(caught.value) == f"{given}, spark-tfrecord for Scala 2.12, and this Spark 4.3.0 runs Scala 2.13: {how}"
        )


def test_the_scala_version_comes_from_the_spark_install(tmp_path):
    (tmp_path / "jars").mkdir()
    assert installed_scala(str(tmp_path)) is None
    (tmp_path / "jars" / "scala-library-2.13.16.jar").write_bytes(b"")
    assert installed_scala(str(tmp_path)) == "2.13"
    import pyspark

    assert installed_scala() == scala_of_spark_version(pyspark.__version__)  # the pip install's own jars
    assert [scala_of_spark_version(v) for v in ("3.5.1", "4.0.0", "4.3.0")] == ["2.12", "2.13", "2.13"]


def _env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in (TFRECORD_JAR_ENV, "PYSPARK_SUBMIT_ARGS")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env


def test_missing_jar_path_is_one_line_before_spark_starts(shapes_dataset, tmp_path):
    missing = tmp_path / "nowhere" / "spark-tfrecord_2.12-0.7.0.jar"
    result = subprocess.run(
        [sys.executable, str(REPO / "jobs" / "export_parquet.py"), "--data", str(shapes_dataset)]
        + ["--output", str(tmp_path / "out")],
        env=_env(**{TFRECORD_JAR_ENV: str(missing)}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {TFRECORD_JAR_ENV}={missing} does not exist; point it at")
    assert result.stderr.count("\n") == 1  # one line: no JVM started, no Spark log
    assert not (tmp_path / "out").exists()


PROBE = """
from pyspark.sql import SparkSession
from dataset.errors import SparkSetupError
from jobs.tfrecord_jar import require_tfrecord_source
spark = SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false").getOrCreate()
spark.sparkContext.setLogLevel("OFF")
try:
    require_tfrecord_source(spark)
except SparkSetupError as err:
    print("error:", err)
"""


@pytest.mark.slow
def test_a_session_without_the_jar_is_one_clear_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", PROBE], env=_env(), cwd=tmp_path, capture_output=True, text=True, timeout=180
    )
    lines = result.stdout.splitlines()
    assert result.returncode == 0, result.stderr[-2000:]
    scala = installed_scala()  # the session's own JVM tells the message which build to name
    assert lines == [
        f"error: Spark has no 'tfrecord' data source: set {TFRECORD_JAR_ENV}=/path/to/spark-tfrecord_{scala}-0.7.0.jar, "
        f"or pass --packages {tfrecord_package(scala)}, or on Databricks install the Maven library "
        f"{tfrecord_package(scala)} (Scala {scala})"
    ]
