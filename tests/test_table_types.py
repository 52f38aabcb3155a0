"""Dates and timestamps convert, missing stays missing: every record against its source, read back
by TensorFlow (raw and parsed), training's parser, serving, predict and Spark (read-back and Parquet)."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.testing import assertDataFrameEqual

from conversion.tables.convert import convert_table
from conversion.tables.options import TableConvertOptions
from dataset.check import validate_dataset
from dataset.errors import ConversionError, DatasetError
from dataset.manifest import Feature, Manifest
from dataset.spark_read import read_split
from dataset.versions import read_manifest
from inference.predict import model_inputs
from jobs.export_parquet import export_parquet
from tests.conftest import needs_tfrecord_jar
from tests.example_reader import file_records, parse_example

try:
    import tensorflow as tf
except ImportError:  # make test-spark4 (no TensorFlow): tests/example_reader.py reads the shards
    tf = None

pytestmark = needs_tfrecord_jar  # written by spark-tfrecord

EPOCH_DAY = dt.date(1970, 1, 1)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
# As R's write.csv / pandas' to_csv write them: ISO dates, timestamps with an offset or Z, timestamps
# without a zone, a date in another spelling, and empty fields for missing values.
CSV = """id,n,x,word,d,ts,local,dmy,y
1,4,0.5,red,2024-01-31,2024-01-31T10:00:00+02:00,2024-01-31 10:00:00,31/01/2024,a
2,,1.25,,1969-12-31,2024-06-30T23:59:59.5-05:00,,01/02/2024,b
3,-2,,blue,,,2000-02-29 12:30:00.25,29/02/2000,a
4,9,-3.5,green,2000-02-29,1970-01-01T00:00:00Z,1969-12-31 23:59:59,,b
5,,,,,,,,a
"""
CSV_TYPES = {
    "id": "bigint", "n": "bigint", "x": "float", "word": "string", "d": "date", "ts": "timestamp",
    "local": "timestamp", "dmy": "string", "y": "string",
}  # fmt: skip


def micros(moment: dt.datetime) -> int:
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def csv_rows(session_zone: str) -> dict[int, dict]:
    """The CSV's rows as Python values of the columns' Spark types (a timestamp without zone is in the session's)."""
    lines = CSV.splitlines()
    names = lines[0].split(",")
    rows = {}
    for line in lines[1:]:
        text = dict(zip(names, line.split(",")))
        parse = {
            "id": int, "n": int, "x": float, "word": str, "dmy": str, "y": str, "d": dt.date.fromisoformat,
            "ts": dt.datetime.fromisoformat,
            "local": lambda v: dt.datetime.fromisoformat(v).replace(tzinfo=ZoneInfo(session_zone)),
        }  # fmt: skip
        rows[int(text["id"])] = {k: parse[k](v) if v else None for k, v in text.items()}
    return rows


def record_value(name: str, value):
    """A source value as the record holds it: days, µs since the epoch in UTC, text as bytes."""
    if isinstance(value, dt.datetime):
        return micros(value)
    if isinstance(value, dt.date):
        return (value - EPOCH_DAY).days
    return value.encode() if isinstance(value, str) else value


def raw_records(out) -> dict[int, dict]:
    """Every record as its `tf.train.Example` holds it, by id: {feature: value}, features left out absent."""
    manifest = read_manifest(str(out))
    records = {}
    for split in manifest.splits.values():
        for shard in split.files:
            if tf is None:  # the independent reader
                examples = [parse_example(record) for record in file_records(out / shard.path)]
            else:
                examples = []
                for serialized in tf.data.TFRecordDataset([str(out / shard.path)]):
                    example = tf.train.Example.FromString(serialized.numpy())
                    examples.append(
                        {n: list(getattr(f, f.WhichOneof("kind")).value) for n, f in example.features.feature.items()}
                    )
            for example in examples:
                row = {n: v if manifest.features[n].length == "var" else v[0] for n, v in example.items()}
                records[row["id"]] = row
    return records


@pytest.fixture(scope="module")
def csv_dataset(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("dates_csv")
    (root / "rows.csv").write_text(CSV, encoding="utf-8")
    out = root / "out"
    options = TableConvertOptions(
        output=str(out), label="y", input=str(root / "rows.csv"), key="id", splits=(("train", 1.0),),
        num_shards=2, null_defaults=(("d", "2000-01-01"), ("n", "-1")), max_reject_fraction=0.0,
    )  # fmt: skip
    summary = convert_table(spark, options)
    assert summary.records == {"train": 5} and summary.rejected == {}
    return root, out


def test_csv_dates_timestamps_and_nulls_are_the_source_in_every_record(spark, csv_dataset):
    _, out = csv_dataset
    manifest = read_manifest(str(out))
    source_types = {name: c.source_type for name, c in manifest.table.columns.items()}
    assert {name: source_types[name] for name in ("d", "ts", "local", "dmy")} == {
        "d": "date", "ts": "timestamp", "local": "timestamp", "dmy": "string",
    }  # fmt: skip  # inference: ISO dates as dates, ISO timestamps (with a zone or not) as timestamps, others text
    logical = {n: (f.dtype, f.logical_type, f.unit, f.timezone) for n, f in manifest.features.items() if f.logical_type}
    assert logical == {
        "d": ("int64", "date", "days", None),
        "ts": ("int64", "timestamp", "microseconds", "UTC"),
        "local": ("int64", "timestamp", "microseconds", "UTC"),
    }
    assert manifest.features["dmy"].logical_type is None and manifest.features["dmy"].dtype == "string"
    assert {n: (f.null_count, f.default) for n, f in manifest.features.items()} == {
        "id": (0, None), "n": (2, -1), "x": (2, 0.0), "word": (2, ""), "d": (2, 10957),  # 2000-01-01
        "ts": (2, 0), "local": (2, 0), "dmy": (2, ""), "y": (0, None),
    }  # fmt: skip
    stats = manifest.table.columns["d"].stats
    assert (stats.count, stats.null_count, stats.min, stats.max) == (3, 2, -1, 19753)  # days, like any number
    assert manifest.table.columns["ts"].stats.min == 0.0
    # every value of every record is the source's; a missing value is a feature left out
    source = csv_rows(spark.conf.get("spark.sql.session.timeZone"))
    records = raw_records(out)
    assert sorted(records) == sorted(source)
    for row_id, row in source.items():
        expected = {name: record_value(name, v) for name, v in row.items() if v is not None}
        assert records[row_id] == expected, row_id  # the floats are exact in 32 bits
    assert records[1]["ts"] == 1_706_688_000_000_000  # 2024-01-31T08:00:00Z
    assert records[2]["ts"] == 1_719_809_999_500_000  # 2024-07-01T04:59:59.5Z
    assert records[2]["d"] == -1 and "n" not in records[2] and "word" not in records[2]
    if tf is not None:  # validate reads with TensorFlow; without it the count is the independent reader's above
        assert validate_dataset(str(out)).num_records == 5


@pytest.mark.needs_tf
def test_readers_supply_the_defaults_where_a_value_is_missing(spark, csv_dataset):
    pytest.importorskip("tensorflow")
    from training.tables.features import plan_features
    from training.tables.parser import table_parser
    from training.tables.serving import table_receiver_fn

    _, out = csv_dataset
    manifest = read_manifest(str(out))
    files = [str(out / f.path) for f in manifest.splits["train"].files]
    serialized = [r.numpy() for r in tf.data.TFRecordDataset(files)]
    source = csv_rows(spark.conf.get("spark.sql.session.timeZone"))
    defaults = {n: f.default for n, f in manifest.features.items()}

    def expected(row_id: int, name: str):
        value = source[row_id][name]
        return record_value(name, defaults[name] if value is None else value)

    features, labels = table_parser(manifest, {})(tf.constant(serialized))
    ids = [int(tf.train.Example.FromString(s).features.feature["id"].int64_list.value[0]) for s in serialized]
    assert [label.decode() for label in labels.numpy()] == [source[i]["y"] for i in ids]
    assert sorted(features) == ["__key__", "d", "dmy", "local", "n", "ts", "word", "x"]
    for name in ("d", "dmy", "local", "n", "ts", "word", "x"):
        assert list(features[name].numpy()) == [expected(i, name) for i in ids], name
    # the export's serving signature parses Examples with the same spec
    plan = plan_features(manifest, {})
    with tf.Graph().as_default():
        receiver = table_receiver_fn(manifest, {"feature_plan": plan})()
        with tf.compat.v1.Session() as session:
            served = session.run(receiver.features, {receiver.receiver_tensors["examples"]: serialized})
    for name in ("d", "ts", "n", "word"):
        assert list(served[name]) == [expected(i, name) for i in ids], name
    assert receiver.receiver_tensors_alternatives["columns"]["d"].dtype == tf.int64


def test_predict_turns_dates_and_timestamps_into_the_records_numbers(spark, csv_dataset):
    root, out = csv_dataset
    manifest = read_manifest(str(out))
    records = raw_records(out)
    rows = spark.read.option("header", "true").option("inferSchema", "true").csv(str(root / "rows.csv"))
    inputs = {r["id"]: r.asDict() for r in model_inputs(rows, manifest).collect()}
    for row_id, record in records.items():
        for name in ("d", "ts", "local"):
            assert inputs[row_id][name] == record.get(name), (row_id, name)
    # the same columns given as text (e.g. a CSV read without inference) give the same numbers
    text = rows.select(*[F.col(c).cast("string").alias(c) for c in rows.columns])
    from_text = {int(r["id"]): r.asDict() for r in model_inputs(text, manifest).collect()}
    assert {k: (v["d"], v["ts"], v["local"]) for k, v in from_text.items()} == {
        k: (v["d"], v["ts"], v["local"]) for k, v in inputs.items()
    }


def test_spark_and_parquet_read_back_dates_timestamps_and_nulls(spark, csv_dataset, tmp_path):
    root, out = csv_dataset
    manifest = read_manifest(str(out))
    schema = manifest.spark_schema(logical=True)
    assert {f.name: f.dataType.simpleString() for f in schema.fields} == CSV_TYPES
    source = csv_rows(spark.conf.get("spark.sql.session.timeZone"))
    expected = spark.createDataFrame([tuple(row[f.name] for f in schema.fields) for row in source.values()], schema)
    frame = read_split(spark, str(out), "train")
    assert frame.schema == schema
    assertDataFrameEqual(frame, expected)
    export_parquet(spark, str(out), str(tmp_path / "parquet"), "train")
    assertDataFrameEqual(spark.read.parquet(str(tmp_path / "parquet")), expected)


PARQUET_SCHEMA = T.StructType(
    [
        T.StructField("id", T.LongType()),
        T.StructField("i", T.IntegerType()),
        T.StructField("f", T.DoubleType()),
        T.StructField("s", T.StringType()),
        T.StructField("blob", T.BinaryType()),
        T.StructField("tags", T.ArrayType(T.StringType())),
        T.StructField("nums", T.ArrayType(T.LongType())),
        T.StructField("d", T.DateType()),
        T.StructField("ts", T.TimestampType()),
        T.StructField("wall", T.TimestampNTZType()),
        T.StructField("y", T.StringType()),
    ]
)
BERLIN = ZoneInfo("Europe/Berlin")
PARQUET_ROWS = [
    (1, 7, 0.25, "a", b"\x00", ["x", "y"], [1, 2], dt.date(2024, 3, 31),
     dt.datetime(2024, 3, 31, 2, 30, tzinfo=dt.timezone.utc), dt.datetime(2024, 3, 31, 2, 30, 0, 1), "p"),
    (2, None, None, None, None, None, None, None, None, None, "q"),
    (3, -1, -2.5, "", b"", [], [], dt.date(1900, 1, 1),
     dt.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=BERLIN), dt.datetime(1969, 12, 31, 23, 59, 59), "p"),
    (4, 2**31 - 1, 1e10, "z", b"\xff", ["w"], [-(2**63)], dt.date(9999, 12, 31),
     dt.datetime(2038, 1, 19, 3, 14, 8, tzinfo=BERLIN), dt.datetime(1, 1, 1), "q"),
]  # fmt: skip


@pytest.fixture(scope="module")
def parquet_dataset(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("dates_parquet")
    source = spark.createDataFrame(PARQUET_ROWS, PARQUET_SCHEMA)
    source.coalesce(1).write.parquet(str(root / "rows.parquet"))
    out = root / "out"
    options = TableConvertOptions(
        output=str(out), label="y", input=str(root / "rows.parquet"), format="parquet", key="id",
        splits=(("train", 1.0),), num_shards=2, max_reject_fraction=0.0,
    )  # fmt: skip
    convert_table(spark, options)
    return source, out


def test_parquet_nulls_in_every_kind_of_column_are_left_out(spark, parquet_dataset):
    _, out = parquet_dataset
    manifest = read_manifest(str(out))
    records = raw_records(out)
    assert records[2] == {"id": 2, "y": b"q"}  # every null left out, lists too
    assert records[3]["tags"] == [] and records[3]["nums"] == [] and records[3]["s"] == b""  # empty is not missing
    assert records[1]["wall"] == micros(dt.datetime(2024, 3, 31, 2, 30, 0, 1, tzinfo=dt.timezone.utc))  # wall clock
    assert records[4]["wall"] == -62_135_596_800_000_000  # 0001-01-01T00:00:00
    assert records[4]["ts"] == 2**31 * 1_000_000 - 3_600_000_000  # 03:14:08 in Berlin is 02:14:08Z
    assert records[3]["ts"] == -3_600_000_001 and records[4]["d"] == 2_932_896 and records[3]["d"] == -25_567
    assert {n: f.null_count for n, f in manifest.features.items()} == {
        "id": 0, "i": 1, "f": 1, "s": 1, "blob": 1, "tags": 1, "nums": 1, "d": 1, "ts": 1, "wall": 1, "y": 0,
    }  # fmt: skip
    assert manifest.features["wall"].logical_type == "timestamp_ntz" and manifest.features["wall"].timezone is None
    assert manifest.features["tags"].default is None  # a list left out reads as an empty list


def test_parquet_source_reads_back_equal_from_spark_and_exported_parquet(spark, parquet_dataset, tmp_path):
    source, out = parquet_dataset
    # the records' types: integers as bigint, doubles as 32-bit floats
    expected = source.select(
        *[
            F.col(c).cast({"i": "bigint", "f": "float"}.get(c, source.schema[c].dataType)).alias(c)
            for c in source.columns
        ]
    )
    names = sorted(source.columns)
    assertDataFrameEqual(read_split(spark, str(out), "train").select(names), expected.select(names))
    export_parquet(spark, str(out), str(tmp_path / "all"))  # every split, partitioned by split
    exported = spark.read.parquet(str(tmp_path / "all"))
    assert exported.schema["wall"].dataType == T.TimestampNTZType() and exported.schema["d"].dataType == T.DateType()
    assertDataFrameEqual(exported.select(names), expected.select(names))


def test_fill_writes_the_defaults_and_bad_date_defaults_are_refused(spark, parquet_dataset, tmp_path):
    source, _ = parquet_dataset
    path = tmp_path / "rows.parquet"
    source.coalesce(1).write.parquet(str(path))

    def options(out: str, **extra) -> TableConvertOptions:
        return TableConvertOptions(
            output=str(tmp_path / out), label="y", input=str(path), format="parquet", key="id",
            splits=(("train", 1.0),), num_shards=1, **extra,
        )  # fmt: skip

    convert_table(spark, options("filled", null_policy="fill", null_defaults=(("ts", "2024-01-01T00:00:00Z"),)))
    manifest = read_manifest(str(tmp_path / "filled"))
    assert all(f.null_count == 0 and f.default is None for f in manifest.features.values())
    filled = raw_records(tmp_path / "filled")[2]
    assert filled["ts"] == 1_704_067_200_000_000 and filled["d"] == 0 and filled["s"] == b"" and filled["tags"] == []
    with pytest.raises(ConversionError, match=r"--null-default d='31/01/2024' is not a valid date"):
        convert_table(spark, options("bad", null_defaults=(("d", "31/01/2024"),)))


@pytest.mark.needs_tf
def test_the_manifest_renders_defaults_in_the_tf_spec(csv_dataset):
    pytest.importorskip("tensorflow")
    _, out = csv_dataset
    spec = read_manifest(str(out)).tf_feature_spec(["d", "word", "id"])
    assert spec == {
        "d": tf.io.FixedLenFeature([], tf.int64, default_value=10957),
        "word": tf.io.FixedLenFeature([], tf.string, default_value=""),
        "id": tf.io.FixedLenFeature([], tf.int64),  # never missing: a record without it fails to parse
    }


def test_the_manifest_round_trips_and_reads_version_2(csv_dataset):
    _, out = csv_dataset
    manifest = read_manifest(str(out))
    assert Manifest.from_json(manifest.to_json()) == manifest
    old = json.loads(manifest.to_json())  # as version 2 wrote it: no logical types, no null counts
    old["format_version"] = 2
    old["features"] = {
        name: {k: feature[k] for k in ("dtype", "shape", "length", "spark_type")}
        for name, feature in old["features"].items()
    }
    read = Manifest.from_json(json.dumps(old))
    assert read.features["n"] == Feature("int64", (), "fixed", "bigint") and read.features["n"].null_count == 0
    old["format_version"] = 1
    with pytest.raises(DatasetError, match="manifest format_version 1 is not one of 2, 3"):
        Manifest.from_json(json.dumps(old))
