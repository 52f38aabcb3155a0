"""The typed manifest: JSON round trip, and both readers' schemas rendered from the one object."""

from __future__ import annotations

import tensorflow as tf
from pyspark.sql import types as T

from dataset.manifest import Manifest
from dataset.versions import read_manifest
from tests.conftest import needs_tfrecord_jar


def test_image_manifest_round_trips_and_renders_both_schemas(shapes_dataset):
    manifest = read_manifest(str(shapes_dataset))
    assert Manifest.from_json(manifest.to_json()) == manifest
    assert (manifest.label_feature, manifest.key_feature, manifest.table) == (
        "image/class/text",
        "image/filename",
        None,
    )
    assert manifest.spark_schema() == T.StructType(
        [
            T.StructField("image/channels", T.LongType()),
            T.StructField("image/class/label", T.LongType()),
            T.StructField("image/class/text", T.StringType()),
            T.StructField("image/encoded", T.BinaryType()),
            T.StructField("image/filename", T.StringType()),
            T.StructField("image/format", T.StringType()),
            T.StructField("image/height", T.LongType()),
            T.StructField("image/key/sha256", T.StringType()),
            T.StructField("image/width", T.LongType()),
        ]
    )
    spec = manifest.tf_feature_spec(["image/encoded", "image/height"])
    assert spec == {
        "image/encoded": tf.io.FixedLenFeature([], tf.string),
        "image/height": tf.io.FixedLenFeature([], tf.int64),
    }


@needs_tfrecord_jar  # table datasets are written by spark-tfrecord
def test_table_manifest_renders_lists_and_binary(spark, tmp_path):
    from conversion.tables.convert import convert_table
    from conversion.tables.options import TableConvertOptions

    rows = tmp_path / "rows.parquet"
    spark.createDataFrame(
        [(1, 2, 0.5, "a", b"x", ["p"], [1.5], "yes"), (2, 3, 1.5, "b", b"y", [], [], "no")],
        "id LONG, n SHORT, r DOUBLE, s STRING, b BINARY, tags ARRAY<STRING>, xs ARRAY<DOUBLE>, y STRING",
    ).write.parquet(str(rows))
    out = tmp_path / "out"
    options = TableConvertOptions(output=str(out), label="y", input=str(rows), format="parquet", key="id")
    convert_table(spark, options.__class__(**{**options.__dict__, "splits": (("train", 1.0),)}))
    manifest = read_manifest(str(out))
    assert Manifest.from_json(manifest.to_json()) == manifest
    assert {f.name: f.dataType for f in manifest.spark_schema().fields} == {
        "b": T.BinaryType(),
        "id": T.LongType(),
        "n": T.LongType(),
        "r": T.FloatType(),
        "s": T.StringType(),
        "tags": T.ArrayType(T.StringType()),
        "xs": T.ArrayType(T.FloatType()),
        "y": T.StringType(),
    }
    assert manifest.table.columns["n"].source_type == "smallint" and manifest.table.key == "id"
    assert manifest.tf_feature_spec(["tags"]) == {"tags": tf.io.VarLenFeature(tf.string)}
