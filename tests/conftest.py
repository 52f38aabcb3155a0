"""Shared fixtures: one real local SparkSession for the whole run, and image-tree builders."""

from __future__ import annotations

import os
import sys

import pytest

TFRECORD_JAR_ENV = "SPARK_TFRECORD_JAR"
needs_tfrecord_jar = pytest.mark.skipif(
    not os.environ.get(TFRECORD_JAR_ENV),
    reason=f"{TFRECORD_JAR_ENV} is not set (make test sets it to ../shared/jars/spark-tfrecord_2.12-0.7.0.jar, make test-spark4 to the _2.13 jar)",
)

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    from pyspark.sql import SparkSession

    tmp = tmp_path_factory.mktemp("spark")
    builder = (
        SparkSession.builder.master("local[2,2]")  # 2 cores; a failed task is retried once
        .appName("tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.warehouse.dir", str(tmp / "warehouse"))
        .config("spark.local.dir", str(tmp / "local"))
        .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={tmp}")
    )
    if os.environ.get(TFRECORD_JAR_ENV):  # format("tfrecord"); set by `make test` and .ci/run
        builder = builder.config("spark.jars", os.environ[TFRECORD_JAR_ENV])
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def shapes_dataset(spark, tmp_path_factory):
    """A converted dataset of generated shape images: 4 labels x 100 PNGs of 32x32, 2 shards per split."""
    from conversion.images.convert import convert_images
    from conversion.images.options import ImageConvertOptions
    from demo.data import generate_tree

    root = tmp_path_factory.mktemp("shapes")
    generate_tree(root / "images", per_label=100)
    out = root / "dataset"
    convert_images(spark, ImageConvertOptions(str(root / "images"), str(out), num_shards=2))
    return out
