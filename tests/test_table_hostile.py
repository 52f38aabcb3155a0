"""Hostile tables: reserved and awkward column names, non-finite labels, malformed CSV rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conversion.tables.convert import convert_table
from conversion.tables.options import TableConvertOptions
from dataset.errors import ConversionError, OptionError
from dataset.spark_read import read_split
from dataset.versions import read_manifest
from tests.conftest import needs_tfrecord_jar

pytestmark = needs_tfrecord_jar  # the records are written by spark-tfrecord


def options(csv: Path, out: Path, **more) -> TableConvertOptions:
    values = dict(output=str(out), label="y", input=str(csv), splits=(("train", 1.0),), num_shards=1)
    values.update(more)
    return TableConvertOptions(**values)


def rejected(out: Path) -> list[dict]:
    return [json.loads(line) for f in sorted((out / "_rejected").glob("*.json")) for line in f.read_text().splitlines()]


@pytest.mark.parametrize("name", ["__key__", "_split", "_h", "__anything", "_tfrecordpipe_shard"])
def test_reserved_column_names_are_refused_up_front_naming_them(spark, tmp_path, name):
    csv = tmp_path / "t.csv"
    csv.write_text(f"id,{name},y\n1,2,a\n2,3,b\n", encoding="utf-8")
    with pytest.raises(ConversionError, match=rf"columns \['{name}'\] use names the pipeline reserves"):
        convert_table(spark, options(csv, tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_a_reserved_column_name_in_parquet_is_refused_not_dropped(spark, tmp_path):
    spark.createDataFrame([(1, "x", "a"), (2, None, "b")], "id INT, _corrupt_record STRING, y STRING").write.parquet(
        str(tmp_path / "t")
    )
    with pytest.raises(ConversionError, match=r"columns \['_corrupt_record'\] use names the pipeline reserves"):
        convert_table(spark, options(tmp_path / "t", tmp_path / "out", format="parquet"))
    assert not (tmp_path / "out").exists()


def test_dotted_and_spaced_column_names_convert_and_read_back(spark, tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text(
        "id,a.b,c d,y\n" + "".join(f"{i},{i}.5,x{i % 3},{'ab'[i % 2]}\n" for i in range(30)), encoding="utf-8"
    )
    out = tmp_path / "out"
    convert_table(spark, options(csv, out, key="id"))
    manifest = read_manifest(str(out))
    assert set(manifest.features) == {"id", "a.b", "c d", "y"}
    assert manifest.table.columns["a.b"].stats.count == 30  # statistics work with a dot in the name
    rows = {r["id"]: r for r in read_split(spark, str(out), "train").collect()}
    assert (rows[3]["a.b"], rows[3]["c d"], rows[3]["y"]) == (3.5, "x0", "b")


def test_nan_and_infinite_labels_are_rejected_rows(spark, tmp_path):
    csv = tmp_path / "t.csv"
    labels = ["1.5", "NaN", "2.5", "Infinity", "-Infinity", "3.5"]
    csv.write_text("id,x,y\n" + "".join(f"{i},{i},{v}\n" for i, v in enumerate(labels)), encoding="utf-8")
    out = tmp_path / "out"
    summary = convert_table(spark, options(csv, out, key="id", task="regression", max_reject_fraction=0.5))
    assert summary.rejected == {"non_finite_label": 3} and summary.records == {"train": 3}
    assert sorted((r["key"], r["column"], r["reason"]) for r in rejected(out)) == [
        ("1", "y", "non_finite_label"),
        ("3", "y", "non_finite_label"),
        ("4", "y", "non_finite_label"),
    ]


def test_malformed_csv_rows_are_rejected_with_their_text_in_permissive_mode(spark, tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text(
        "id,x,y\n" + "".join(f"{i},{i}.0,{'ab'[i % 2]}\n" for i in range(40)) + "40,oops\n", encoding="utf-8"
    )
    out = tmp_path / "out"
    summary = convert_table(spark, options(csv, out, key="id"))
    assert summary.rejected == {"malformed_row": 1} and summary.records == {"train": 40}
    (row,) = rejected(out)
    assert (row["key"], row["column"], row["reason"], row["row"]) == (
        "40",
        "_corrupt_record",
        "malformed_row",
        "40,oops",
    )


def test_csv_modes_failfast_and_dropmalformed(spark, tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text(
        "id,x,y\n" + "".join(f"{i},{i}.0,{'ab'[i % 2]}\n" for i in range(8)) + "8,oops\n9,9.0,a\n", encoding="utf-8"
    )
    with pytest.raises(ConversionError, match=r"a row of .* does not parse as CSV with the header's columns: '8,oops'"):
        convert_table(spark, options(csv, tmp_path / "strict", csv_mode="failfast"))
    assert not (tmp_path / "strict").exists()
    # 1 of 10 rows is malformed: over the default 5% limit when counted, fine when dropped
    with pytest.raises(ConversionError, match=r"1 of 10 rows rejected"):
        convert_table(spark, options(csv, tmp_path / "counted", key="id"))
    summary = convert_table(spark, options(csv, tmp_path / "dropped", key="id", csv_mode="dropmalformed"))
    assert summary.rejected == {"malformed_row": 1} and summary.records == {"train": 9}
    with pytest.raises(OptionError, match="--csv-mode must be one of permissive, dropmalformed, failfast"):
        options(csv, tmp_path / "x", csv_mode="lenient")


def test_quoted_newlines_need_csv_multiline(spark, tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text('id,note,y\n1,"two\nlines",a\n2,plain,b\n3,"x",a\n', encoding="utf-8")
    out = tmp_path / "out"
    summary = convert_table(spark, options(csv, out, key="id", csv_multiline=True))
    assert summary.rejected == {} and summary.records == {"train": 3}
    rows = {r["id"]: r for r in read_split(spark, str(out), "train").collect()}
    assert rows[1]["note"] == "two\nlines"


@pytest.mark.slow
@pytest.mark.needs_tf
def test_a_dotted_column_trains_and_serves_by_name(spark, tmp_path):
    import tensorflow as tf

    from dataset.export import COLUMNS_INPUT
    from inference.predict import predict_table_file
    from training.config import TrainConfig
    from training.run import run_training

    csv = tmp_path / "t.csv"
    csv.write_text("id,a.b,y\n" + "".join(f"{i},{i % 10},{'lo' if i % 10 < 5 else 'hi'}\n" for i in range(200)))
    data = tmp_path / "data"
    convert_table(spark, options(csv, data, key="id", splits=(("train", 0.8), ("test", 0.2))))
    config = TrainConfig(str(data), str(tmp_path / "model"), batch_size=16, epochs=3, eval_split="test")
    export = run_training(spark, config, num_proc=1).metrics["export_path"]
    predict = tf.saved_model.load(export).signatures[f"{COLUMNS_INPUT}:predict"]
    assert set(predict.structured_input_signature[1]) == {"a_b"}  # column_input_name("a.b")
    out = predict(a_b=tf.constant([1, 9], tf.int64))
    assert [c.decode() for c in out["classes"].numpy()[:, 0]] == ["lo", "hi"]
    predictions = predict_table_file(spark, export, str(csv)).toPandas()  # maps the columns to the inputs
    assert len(predictions) == 200 and (predictions["predicted_label"] == predictions["true_label"]).mean() > 0.9
