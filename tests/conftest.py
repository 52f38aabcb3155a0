"""Shared fixtures: one real local SparkSession for the whole run, and image-tree builders."""

from __future__ import annotations

import os
import sys

import pytest

from tests.s3server import s3_server_fixture

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
        # full tiered JIT for this long-lived JVM, whatever SPARK_SUBMIT_OPTS gives the short-lived ones (Makefile)
        .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={tmp} -XX:TieredStopAtLevel=4")
    )
    if os.environ.get(TFRECORD_JAR_ENV):  # format("tfrecord"); set by `make test` and .ci/run
        builder = builder.config("spark.jars", os.environ[TFRECORD_JAR_ENV])
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


# One S3Proxy 4.0.0 for the run, started when a test first needs it; modules take a bucket of their own on it
# (tests/s3server.py: s3_bucket_fixture).
shared_s3 = s3_server_fixture(scope="session", name="shared_s3")


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


@pytest.fixture(scope="session")
def tiny_images(spark, tmp_path_factory) -> str:
    """8x8 PNGs of labels a and b converted from split folders: train (12 a label) and test (4), one shard each;
    `empty`: a split whose only file was rejected."""
    from conversion.images.convert import convert_images
    from conversion.images.options import ImageConvertOptions
    from dataset.versions import read_manifest
    from tests.images import image_bytes, write

    tmp = tmp_path_factory.mktemp("tiny")
    for split, count in (("train", 12), ("test", 4)):
        for label in ("a", "b"):
            for i in range(count):
                seed = i + 50 * (label == "b") + 500 * (split == "test")
                write(tmp / "in", f"{split}/{label}/{i}.png", image_bytes("PNG", (8, 8), seed=seed))
    write(tmp / "in", "empty/a/bad.png", b"not an image")
    options = ImageConvertOptions(
        str(tmp / "in"), str(tmp / "data"), split_from_folders=True, num_shards=1, max_reject_fraction=0.5
    )
    convert_images(spark, options)
    manifest = read_manifest(str(tmp / "data"))
    assert {name: len(split.files) for name, split in manifest.splits.items()} == {"empty": 1, "test": 1, "train": 1}
    assert manifest.splits["empty"].num_records == 0 and manifest.labels == ("a", "b")
    return str(tmp / "data")


@pytest.fixture(scope="session")
def tiny_model(spark, tiny_images, tmp_path_factory):
    """The TrainResult of 3 steps on one Horovod rank over `tiny_images` (batch 4, evaluated on test), exported.

    Shared: test_train_options checks the one-rank run, test_predict_errors predicts with its export; each
    Horovod start costs tens of seconds (fresh Python processes that import TensorFlow).
    """
    from training.config import TrainConfig
    from training.run import run_training

    model_dir = tmp_path_factory.mktemp("tiny_model") / "m"
    config = TrainConfig(data=tiny_images, model_dir=str(model_dir), batch_size=4, max_steps=3, eval_split="test")
    return run_training(spark, config, 1)
