"""Table conversion on real Spark: every type back value for value, nulls, NaN, statistics, errors."""

from __future__ import annotations

import decimal
import json
import math

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from pyspark.sql import types as T

from conversion.faults import FAULT_CONF
from conversion.tables.convert import convert_table
from conversion.tables.options import TableConvertOptions
from dataset.check import validate_dataset
from dataset.errors import ConversionError
from dataset.manifest import read_manifest

ROWS = [
    # id, small, big, ratio, price, name, flag, blob, tags, scores, label
    (1, 3, 2**40, 0.5, decimal.Decimal("1.25"), "alpha", True, b"\x00\x01", ["a", "b"], [1.0, 2.0], "yes"),
    (2, None, -7, float("nan"), decimal.Decimal("2.50"), "beta", False, b"", [], [3.5], "no"),
    (3, 5, 9, 1.5, None, None, None, None, None, None, "yes"),
    (4, -1, 0, float("inf"), decimal.Decimal("0.00"), "beta", True, b"\xff", ["c"], [], "no"),
    (5, 2, 11, 2.5, decimal.Decimal("3.75"), "gamma", False, b"z", ["a"], [0.25], None),
    (6, 8, 12, -3.0, decimal.Decimal("1.00"), "alpha", True, b"q", ["b", "b"], [1.5, 1.5], "yes"),
]
SCHEMA = T.StructType(
    [
        T.StructField("id", T.LongType()),
        T.StructField("small", T.ShortType()),
        T.StructField("big", T.LongType()),
        T.StructField("ratio", T.DoubleType()),
        T.StructField("price", T.DecimalType(6, 2)),
        T.StructField("name", T.StringType()),
        T.StructField("flag", T.BooleanType()),
        T.StructField("blob", T.BinaryType()),
        T.StructField("tags", T.ArrayType(T.StringType())),
        T.StructField("scores", T.ArrayType(T.FloatType())),
        T.StructField("label", T.StringType()),
    ]
)


def read_back(out) -> dict[int, dict]:
    manifest = read_manifest(str(out))
    spec = manifest.tf_feature_spec()
    rows = {}
    for split in manifest.splits.values():
        for serialized in tf.data.TFRecordDataset([str(out / f.path) for f in split.files]):
            parsed = tf.io.parse_single_example(serialized, spec)
            row = {}
            for name, value in parsed.items():
                value = tf.sparse.to_dense(value) if isinstance(value, tf.SparseTensor) else value
                row[name] = value.numpy()
            rows[int(row["id"])] = row
    return rows


@pytest.fixture(scope="module")
def parquet(spark, tmp_path_factory):
    path = tmp_path_factory.mktemp("tables") / "rows.parquet"
    spark.createDataFrame(ROWS, SCHEMA).coalesce(1).write.parquet(str(path))
    return path


def test_parquet_every_type_round_trips_with_nulls_filled(spark, parquet, tmp_path):
    out = tmp_path / "out"
    summary = convert_table(
        spark,
        TableConvertOptions(
            output=str(out),
            label="label",
            input=str(parquet),
            format="parquet",
            key="id",
            splits=(("train", 1.0),),
            num_shards=2,
            max_reject_fraction=0.5,
            null_defaults=(("small", "-99"),),
        ),
    )
    assert summary.records == {"train": 5} and summary.rejected == {"null_label": 1}
    rows = read_back(out)
    assert sorted(rows) == [1, 2, 3, 4, 6]
    manifest = read_manifest(str(out))
    assert {k: (v.dtype, v.length) for k, v in manifest.features.items()} == {
        "id": ("int64", "fixed"),
        "small": ("int64", "fixed"),
        "big": ("int64", "fixed"),
        "ratio": ("float32", "fixed"),
        "price": ("float32", "fixed"),
        "name": ("string", "fixed"),
        "flag": ("int64", "fixed"),
        "blob": ("string", "fixed"),
        "tags": ("string", "var"),
        "scores": ("float32", "var"),
        "label": ("string", "fixed"),
    }
    by_id = {r[0]: r for r in ROWS}
    for row_id, row in rows.items():
        _, small, big, ratio, price, name, flag, blob, tags, scores, label = by_id[row_id]
        assert row["small"] == (-99 if small is None else small) and row["big"] == big
        assert (math.isnan(row["ratio"]) and math.isnan(ratio)) or row["ratio"] == np.float32(ratio)
        assert row["price"] == np.float32(float(price) if price is not None else 0.0)
        assert row["name"] == (name or "").encode() and row["flag"] == int(bool(flag))
        assert row["blob"] == (blob or b"") and list(row["tags"]) == [t.encode() for t in tags or []]
        np.testing.assert_array_equal(row["scores"], np.array(scores or [], np.float32))
        assert row["label"] == label.encode()
    assert manifest.labels == ("no", "yes") and manifest.splits["train"].label_counts == {"no": 2, "yes": 3}
    report = [json.loads(line) for f in (out / "_rejected").glob("*.json") for line in f.read_text().splitlines()]
    assert [(r["key"], r["column"], r["reason"]) for r in report] == [("5", "label", "null_label")]
    assert validate_dataset(str(out)).num_records == 5


def test_csv_statistics_match_pandas(spark, tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "x": rng.normal(10, 3, 400).round(3),
            "n": rng.integers(0, 50, 400),
            "color": rng.choice(["red", "green", "blue", "teal"], 400, p=[0.4, 0.3, 0.2, 0.1]),
            "y": rng.choice(["a", "b"], 400),
        }
    )
    frame.loc[[3, 7], "x"] = np.nan
    frame.loc[[5], "color"] = None
    csv = tmp_path / "t.csv"
    frame.to_csv(csv, index=False)
    out = tmp_path / "out"
    convert_table(
        spark,
        TableConvertOptions(
            output=str(out), label="y", input=str(csv), splits=(("train", 1.0),), num_shards=3, max_vocab=3
        ),
    )
    columns = read_manifest(str(out)).table.columns
    x = columns["x"].stats
    assert x.null_count == 2 and x.count == 398
    assert x.mean == pytest.approx(frame["x"].mean()) and x.stddev == pytest.approx(frame["x"].std())
    assert (x.min, x.max) == (frame["x"].min(), frame["x"].max())
    assert len(x.boundaries) == 9 and list(x.boundaries) == sorted(x.boundaries)
    assert columns["n"].stats.mean == pytest.approx(frame["n"].mean())
    color = columns["color"].stats
    top = frame["color"].value_counts()
    assert color.num_distinct == 4 and color.null_count == 1
    assert color.vocabulary == tuple((value, int(count)) for value, count in top.items())[:3]
    assert read_manifest(str(out)).table.task == "classification"


def test_null_reject_policy_and_reject_limit(spark, parquet, tmp_path):
    with pytest.raises(ConversionError, match=r"3 of 6 rows rejected \(50.0%\) > --max-reject-fraction 0.05"):
        convert_table(
            spark,
            TableConvertOptions(
                output=str(tmp_path / "o"), label="label", input=str(parquet), format="parquet", null_policy="reject"
            ),
        )
    assert not (tmp_path / "o").exists()
    out = tmp_path / "ok"
    convert_table(
        spark,
        TableConvertOptions(
            output=str(out),
            label="label",
            input=str(parquet),
            format="parquet",
            null_policy="reject",
            max_reject_fraction=0.6,
            key="id",
        ),
    )
    report = {
        json.loads(line)["key"]: json.loads(line)
        for f in (out / "_rejected").glob("*.json")
        for line in f.read_text().splitlines()
    }
    assert {k: (v["column"], v["reason"]) for k, v in report.items()} == {
        "2": ("small", "null"),
        "3": ("price", "null"),
        "5": ("label", "null_label"),
    }


def test_clear_errors(spark, parquet, tmp_path):
    with pytest.raises(ConversionError, match=r"label column 'target' does not exist; columns are: id, small"):
        convert_table(
            spark, TableConvertOptions(output=str(tmp_path / "a"), label="target", input=str(parquet), format="parquet")
        )
    nested = tmp_path / "nested.parquet"
    spark.createDataFrame([(1, (2, "x"))], "id INT, info STRUCT<a: INT, b: STRING>").write.parquet(str(nested))
    with pytest.raises(ConversionError, match=r"column 'info' has type struct<a:int,b:string>, which has no"):
        convert_table(
            spark, TableConvertOptions(output=str(tmp_path / "b"), label="id", input=str(nested), format="parquet")
        )
    with pytest.raises(ConversionError, match="cannot read .*missing.csv as csv"):
        convert_table(
            spark, TableConvertOptions(output=str(tmp_path / "c"), label="y", input=str(tmp_path / "missing.csv"))
        )


def test_a_table_task_failing_mid_write_is_retried_and_reruns_are_byte_identical(spark, tmp_path):
    csv = tmp_path / "rows.csv"
    csv.write_text("id,x,y\n" + "".join(f"{i},{i * 0.5},{'ab'[i % 2]}\n" for i in range(200)), encoding="utf-8")

    def convert(out):
        options = TableConvertOptions(output=str(out), label="y", input=str(csv), key="id", num_shards=3)
        return convert_table(spark, options)

    spark.conf.set(FAULT_CONF, "5")
    try:
        summary = convert(tmp_path / "retried")
    finally:
        spark.conf.unset(FAULT_CONF)
    assert summary.retried_shards == 1  # the injected failure happened and the task was retried
    assert sorted(read_back(tmp_path / "retried")) == list(range(200))
    # read_back keys by id, so a row written twice shows once: the counts catch it (records per shard)
    manifest = read_manifest(str(tmp_path / "retried"))
    assert manifest.num_records == 200 and validate_dataset(str(tmp_path / "retried")).num_records == 200
    assert not list((tmp_path / "retried").glob("*.tmp-*"))
    convert(tmp_path / "again")
    for shard in (tmp_path / "retried").glob("*.tfrecord"):
        assert (tmp_path / "again" / shard.name).read_bytes() == shard.read_bytes()

