"""Table conversion on real Spark: every type back value for value, nulls, NaN, statistics, errors."""

from __future__ import annotations

import decimal
import json
import math

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T

from conversion.faults import FAULT_CONF
from conversion.tables.convert import convert_table
from conversion.tables.options import TableConvertOptions
from conversion.tables.quantiles import sample_hash
from dataset.check import validate_dataset
from dataset.errors import ConversionError
from dataset.spark_read import read_split
from dataset.versions import read_manifest
from tests.conftest import needs_tfrecord_jar
from tests.example_reader import file_records, parse_example, parsed_like_tf

try:
    import tensorflow as tf
except ImportError:  # make test-spark4 (no TensorFlow): tests/example_reader.py reads the shards
    tf = None

pytestmark = needs_tfrecord_jar  # the records are written by spark-tfrecord

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
    if tf is None:  # the independent reader, parsing as TensorFlow does
        return {int(row["id"]): row for split in manifest.splits for row in parsed_like_tf(out, split)}
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


def validated(out) -> int:
    """validate's record count (it reads with TensorFlow); without TensorFlow, the independent reader's."""
    if tf is None:
        return sum(len(parsed_like_tf(out, split)) for split in read_manifest(str(out)).splits)
    return validate_dataset(str(out)).num_records


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
    assert validated(out) == 5


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


def test_quantiles_come_from_a_deterministic_sample_bounded_in_rows(spark, tmp_path):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"id": range(6000), "x": rng.normal(0, 1, 6000), "y": rng.choice(["a", "b"], 6000)})
    frame.to_parquet(tmp_path / "t.parquet")

    def boundaries(name: str, sample_rows: int) -> tuple[float, ...]:
        options = TableConvertOptions(
            output=str(tmp_path / name),
            label="y",
            input=str(tmp_path / "t.parquet"),
            format="parquet",
            key="id",
            splits=(("train", 1.0),),
            num_shards=2,
            quantile_sample_rows=sample_rows,
        )
        convert_table(spark, options)
        return read_manifest(str(tmp_path / name)).table.columns["x"].stats.boundaries

    deciles = [i / 10 for i in range(1, 10)]
    every_row = boundaries("all", 10_000)
    sampled = boundaries("sampled", 1000)  # 1 row in 4: the largest power of two leaving at least 1,000 of 6,000
    # every row: the exact deciles, value of rank ceil(p * n), as percentile_approx gives them up to 1,000 values
    ordered = np.sort(frame["x"])
    assert list(every_row) == [float(ordered[math.ceil(p * 6000) - 1]) for p in deciles]
    # the sample: the rows whose sample hash (of the key's row hash) ends in two zero bits, its exact deciles
    keyed = spark.read.parquet(str(tmp_path / "t.parquet")).select(
        "x", sample_hash(F.xxhash64("id")).bitwiseAND(3).alias("low")
    )
    rows = np.sort([r["x"] for r in keyed.where("low = 0").collect()])
    assert 1000 <= len(rows) < 2000
    assert list(sampled) == [float(rows[math.ceil(p * len(rows)) - 1]) for p in deciles]
    assert boundaries("sampled_again", 1000) == sampled  # the same rows on every run


def test_null_reject_policy_and_reject_limit(spark, parquet, tmp_path):
    with pytest.raises(ConversionError, match=r"3 of 6 rows rejected \(50.0%\) > --max-reject-fraction 0.05"):
        convert_table(
            spark,
            TableConvertOptions(
                output=str(tmp_path / "o"), label="label", input=str(parquet), format="parquet", null_policy="reject"
            ),
        )
    (refused,) = (tmp_path / "o").iterdir()  # no version: the refused run's folder with its report only
    assert refused.name.startswith("run-") and [p.name for p in refused.iterdir()] == ["_rejected"]
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
    assert manifest.num_records == 200 and validated(tmp_path / "retried") == 200
    assert not list((tmp_path / "retried").glob("*.tmp-*"))
    convert(tmp_path / "again")
    for shard in (tmp_path / "retried").glob("*.tfrecord"):
        assert (tmp_path / "again" / shard.name).read_bytes() == shard.read_bytes()


# Every column type the job takes, with nulls, NaN, infinities and null list elements.
ALL_TYPES = T.StructType(
    [
        T.StructField("id", T.LongType()),
        T.StructField("b", T.ByteType()),
        T.StructField("s", T.ShortType()),
        T.StructField("i", T.IntegerType()),
        T.StructField("big", T.LongType()),
        T.StructField("f", T.FloatType()),
        T.StructField("d", T.DoubleType()),
        T.StructField("dec", T.DecimalType(6, 2)),
        T.StructField("name", T.StringType()),
        T.StructField("flag", T.BooleanType()),
        T.StructField("blob", T.BinaryType()),
        T.StructField("tags", T.ArrayType(T.StringType())),
        T.StructField("ints", T.ArrayType(T.IntegerType())),
        T.StructField("scores", T.ArrayType(T.DoubleType())),
        T.StructField("label", T.StringType()),
    ]
)
NAN, INF = float("nan"), float("inf")
ALL_ROWS = [
    (
        1,
        1,
        3,
        7,
        2**40,
        1.5,
        0.1,
        decimal.Decimal("1.25"),
        "alpha",
        True,
        b"\x00\x01",
        ["a", "b"],
        [1, 2],
        [1.0, 2.0],
        "yes",
    ),
    (2, None, None, None, None, NAN, NAN, None, None, None, None, None, None, None, "no"),
    (3, -128, -32768, -(2**31), -(2**63), INF, -INF, decimal.Decimal("-9999.99"), "", False, b"", [], [], [], "yes"),
    (
        4,
        127,
        32767,
        2**31 - 1,
        2**63 - 1,
        -INF,
        1e300,
        decimal.Decimal("0.01"),
        "délta",
        True,
        b"\xff" * 300,
        ["c", None],
        [None, 5],
        [None, NAN, INF, 1e-30],
        "no",
    ),  # fmt: skip
    (5, 0, 0, 0, 0, 3.4e38, 1 / 3, decimal.Decimal("3.75"), "x", False, b"z", ["a"], [0], [0.25], None),
]
FILLS = {"i": -5, "ints": -1}  # --null-default i=-5 ints=-1; the rest: 0, 0.0, "", b"", []


def filled_source_row(row: tuple) -> dict:
    """A source row as the dataset should hold it: nulls filled, floats as 32-bit, ints as int64."""
    out = {}
    for field, value in zip(ALL_TYPES.fields, row):
        name, data_type = field.name, field.dataType
        if isinstance(data_type, T.ArrayType):
            element = FILLS.get(name, {"tags": "", "scores": 0.0}.get(name, 0))
            out[name] = [element if v is None else v for v in value or []]
        else:
            default = {T.StringType: "", T.BinaryType: b"", T.DoubleType: 0.0, T.FloatType: 0.0}
            out[name] = FILLS.get(name, default.get(type(data_type), 0)) if value is None else value
        if name in ("f", "d", "dec"):
            with np.errstate(over="ignore"):  # 1e300 is +inf as a 32-bit float
                out[name] = np.float32(float(out[name]))
        elif name == "scores":
            out[name] = [np.float32(v) for v in out[name]]
        elif name == "flag":
            out[name] = int(out[name])
    return out


def same(got, want) -> bool:
    """Equal, NaN equal to NaN (floats compared as 32-bit)."""
    if isinstance(want, np.float32):
        return bool(np.isnan(want) and np.isnan(np.float32(got))) or np.float32(got) == want
    return got == want


@pytest.fixture(scope="module")
def all_types(spark, tmp_path_factory):
    path = tmp_path_factory.mktemp("all_types") / "rows.parquet"
    spark.createDataFrame(ALL_ROWS, ALL_TYPES).coalesce(1).write.parquet(str(path))
    return path


def test_every_type_round_trips_to_tf_data_and_back_into_spark(spark, all_types, tmp_path):
    out = tmp_path / "out"
    options = TableConvertOptions(
        output=str(out),
        label="label",
        input=str(all_types),
        format="parquet",
        key="id",
        splits=(("train", 1.0),),
        num_shards=2,
        max_reject_fraction=0.5,
        null_defaults=(("i", "-5"), ("ints", "-1")),
        null_policy="fill",  # written into the records, so Spark reads them back too (keep: tests/test_table_types.py)
    )
    summary = convert_table(spark, options)
    assert summary.records == {"train": 4} and summary.rejected == {"null_label": 1}
    expected = {row[0]: filled_source_row(row) for row in ALL_ROWS if row[-1] is not None}
    manifest = read_manifest(str(out))
    # tf.data with the manifest's spec
    for row_id, row in read_back(out).items():
        want = expected[row_id]
        for name, value in row.items():
            if name in ("tags", "name", "label"):
                value = [v.decode() for v in value] if name == "tags" else value.decode()
            got = list(value) if np.ndim(value) else value.item() if hasattr(value, "item") else value
            if name == "scores":
                assert len(got) == len(want[name]) and all(map(same, got, want[name])), name
            else:
                assert same(got, want[name]), (row_id, name, got, want[name])
    assert sorted(read_back(out)) == sorted(expected)
    # Spark, through spark-tfrecord with the manifest's schema
    frame = read_split(spark, str(out), "train")
    assert frame.schema == manifest.spark_schema()
    by_id = {r["id"]: r.asDict() for r in frame.collect()}
    assert sorted(by_id) == sorted(expected)
    for row_id, row in by_id.items():
        for name, want in expected[row_id].items():
            got = bytes(row[name]) if name == "blob" else row[name]
            if name == "scores":
                assert len(got) == len(want) and all(map(same, got, want)), (row_id, name)
            else:
                assert same(got, want), (row_id, name, got, want)


def test_rows_with_nulls_or_null_elements_are_rejected_and_listed(spark, all_types, tmp_path):
    out = tmp_path / "out"
    options = TableConvertOptions(
        output=str(out),
        label="label",
        input=str(all_types),
        format="parquet",
        key="id",
        null_policy="reject",
        max_reject_fraction=0.8,
        splits=(("train", 1.0),),
    )
    summary = convert_table(spark, options)
    assert summary.records == {"train": 2} and summary.rejected == {"null": 2, "null_label": 1}
    report = [json.loads(line) for f in (out / "_rejected").glob("*.json") for line in f.read_text().splitlines()]
    assert sorted((r["key"], r["column"], r["reason"]) for r in report) == [
        ("2", "b", "null"),
        ("4", "tags", "null"),  # a list holding a null
        ("5", "label", "null_label"),
    ]
    assert sorted(read_back(out)) == [1, 3]


def test_csv_with_nulls_nan_and_infinities_round_trips(spark, tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text(
        "id,n,x,word,y\n1,4,0.5,red,a\n2,,NaN,,b\n3,-2,Infinity,blue,a\n4,9,-Infinity,red,b\n5,1,,green,a\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    convert_table(
        spark,
        TableConvertOptions(
            output=str(out),
            label="y",
            input=str(csv),
            key="id",
            splits=(("train", 1.0),),
            num_shards=2,
            null_policy="fill",  # Spark reads the defaults back too (keep: tests/test_table_types.py)
        ),
    )
    assert {k: v.spark_type for k, v in read_manifest(str(out)).features.items()} == {
        "id": "bigint",
        "n": "bigint",
        "x": "float",
        "word": "string",
        "y": "string",
    }
    want = {1: (4, 0.5, "red"), 2: (0, NAN, ""), 3: (-2, INF, "blue"), 4: (9, -INF, "red"), 5: (1, 0.0, "green")}
    tf_rows = read_back(out)
    spark_rows = {r["id"]: r for r in read_split(spark, str(out), "train").collect()}
    assert sorted(tf_rows) == sorted(spark_rows) == sorted(want)
    for row_id, (n, x, word) in want.items():
        for row, text in (
            (tf_rows[row_id], tf_rows[row_id]["word"].decode()),
            (spark_rows[row_id], spark_rows[row_id]["word"]),
        ):
            assert row["n"] == n and text == word and same(row["x"], np.float32(x))


def test_each_shard_file_holds_exactly_its_rows_in_order_and_gzip_reruns_are_identical(spark, tmp_path):
    from conversion.splits import split_column
    from conversion.tables.shards import ShardPlan

    source = tmp_path / "rows.parquet"
    spark.range(0, 150).selectExpr("id", "id * 3 % 7 AS v", "IF(id % 2 = 0, 'a', 'b') AS y").write.parquet(str(source))
    splits = (("train", 0.8), ("test", 0.2))

    def convert(out):
        options = TableConvertOptions(
            output=str(out), label="y", input=str(source), format="parquet", key="id", splits=splits,
            num_shards=16, compression="gzip",
        )  # fmt: skip
        return convert_table(spark, options)

    convert(tmp_path / "one")
    manifest = read_manifest(str(tmp_path / "one"))
    # the shard of every row, by the plan's rule in Spark SQL
    plan = ShardPlan(tuple((s, len(i.files)) for s, i in sorted(manifest.splits.items())), "gzip")
    keyed = spark.read.parquet(str(source)).select(
        "id", F.xxhash64("id").alias("h"), split_column(F.col("id").cast("string"), splits).alias("split")
    )
    rows = keyed.select(
        "id",
        plan.shard_column(F.col("split"), F.col("h")).alias("shard"),
        F.xxhash64(F.col("h"), F.lit("order")).alias("order"),
        "h",
    ).collect()
    names = plan.names()
    want: dict[str, list[int]] = {name: [] for name in names}
    for r in sorted(rows, key=lambda r: (r["order"], r["h"])):  # inside a shard: by a hash of the key
        want[names[r["shard"]]].append(r["id"])
    (one,) = (tmp_path / "one").glob("run-*")
    assert sorted(p.name for p in one.glob("*.tfrecord*") if p.suffix != ".idx") == sorted(names)
    assert [len(manifest.split(s).files) for s in ("test", "train")] == [16, 16]
    got = {name: [parse_example(r)["id"][0] for r in file_records(one / name)] for name in names}
    assert got == want  # every file holds exactly its shard's rows, in the key-hash order
    assert any(not ids for ids in want.values())  # an empty shard is still a (valid, empty) file
    for name in names:
        file = next(f for s in manifest.splits.values() for f in s.files if f.path == f"{one.name}/{name}")
        assert file.num_records == len(want[name]) and file.bytes == (one / name).stat().st_size
    convert(tmp_path / "two")
    (two,) = (tmp_path / "two").glob("run-*")
    for name in names:
        assert (two / name).read_bytes() == (one / name).read_bytes()


def test_shard_records_come_from_bucket_counts_only_when_the_shard_count_divides_the_buckets():
    from conversion.tables.shards import ShardPlan

    plan = ShardPlan((("test", 2), ("train", 4)))
    counts = {("test", 0): 5, ("test", 3): 1, ("train", 1): 2, ("train", 5): 3, ("train", 6): 7}
    assert plan.records(counts, 8) == {0: 5, 1: 1, 3: 5, 4: 7}  # shard = offset + bucket mod count
    assert plan.records(counts, 6) is None  # 4 shards do not divide 6 buckets


def test_a_split_with_fewer_rows_than_num_shards_still_has_exact_shard_counts(spark, tmp_path):
    source = tmp_path / "rows.parquet"
    spark.range(0, 3).selectExpr("id", "IF(id = 1, 'a', 'b') AS y").write.parquet(str(source))
    out = tmp_path / "out"
    options = TableConvertOptions(
        output=str(out), label="y", input=str(source), format="parquet", key="id", splits=(("train", 1.0),),
        num_shards=4,
    )  # fmt: skip
    convert_table(spark, options)  # 3 shards (no more than rows), which do not divide the 4 counted buckets
    files = read_manifest(str(out)).split("train").files
    assert len(files) == 3
    assert [f.num_records for f in files] == [len(file_records(out / f.path)) for f in files]
    assert sum(f.num_records for f in files) == 3


def test_gzip_shards_counted_on_the_write_are_checked_against_their_frames(spark, tmp_path):
    # A split with fewer rows than --num-shards has its shard counts observed on the write (metrics Spark may sum
    # over retried attempts); gzip shards have no index to check them by, so the job counts their frames.
    source = tmp_path / "rows.parquet"
    spark.range(0, 12).selectExpr("id", "IF(id % 2 = 0, 'a', 'b') AS y").write.parquet(str(source))
    options = TableConvertOptions(
        output=str(tmp_path / "out"), label="y", input=str(source), format="parquet", key="id",
        splits=(("train", 0.5), ("test", 0.5)), num_shards=16, compression="gzip",
    )  # fmt: skip
    convert_table(spark, options)
    manifest = read_manifest(str(tmp_path / "out"))
    files = [f for s in manifest.splits.values() for f in s.files]
    assert len(files) == 12 and all(f.index is None for f in files)  # a split of n < 16 rows: n shards
    counted = {f.path: len(list(file_records(tmp_path / "out" / f.path))) for f in files}
    assert {f.path: f.num_records for f in files} == counted and sum(counted.values()) == 12
