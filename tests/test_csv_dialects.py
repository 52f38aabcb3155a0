"""CSV as other tools write it (R's write.csv, pandas' to_csv, TSV, comments, Latin-1, quoted newlines, every
missing and non-finite spelling): every record value equals what pandas.read_csv gives with the same options,
records plus rejects equal pandas' rows, and where the job stops, one line and exit status 2."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conversion.tables.convert import convert_table
from conversion.tables.options import TableConvertOptions
from dataset.csv_types import NA_SPELLINGS, NAN_SPELLINGS
from dataset.errors import ConversionError, OptionError
from dataset.table_reading import read_table
from dataset.versions import read_manifest
from jobs import convert_table as job
from tests.conftest import needs_tfrecord_jar
from tests.example_reader import parsed_like_tf

try:
    import tensorflow as tf
except ImportError:  # make test-spark4 (no TensorFlow): tests/example_reader.py reads the shards
    tf = None

DEFAULTS = {"int64": 0, "float32": 0.0, "string": b""}  # what a reader gets for a missing value


def records(out: Path, key: str) -> dict:
    """Every record of the dataset, parsed with the manifest's own spec, by its key's text."""
    manifest = read_manifest(str(out))
    if tf is None:  # the independent reader, parsing as TensorFlow does
        parsed = [row for split in manifest.splits for row in parsed_like_tf(out, split)]
    else:
        spec = manifest.tf_feature_spec()
        files = [str(out / f.path) for split in manifest.splits.values() for f in split.files]
        parsed = [
            {name: value.numpy() for name, value in tf.io.parse_single_example(serialized, spec).items()}
            for serialized in tf.data.TFRecordDataset(files)
        ]
    rows = {}
    for row in parsed:
        value = row[key]
        rows[value.decode() if isinstance(value, bytes) else str(value)] = row
    return rows


def rejected(out: Path) -> list[dict]:
    return [json.loads(line) for f in sorted((out / "_rejected").glob("*.json")) for line in f.read_text().splitlines()]


def assert_equals_pandas(out: Path, frame: pd.DataFrame, key: str, names: dict[str, str] | None = None) -> None:
    """Every value of every record equals pandas' (floats within float32, text exact); a value pandas reads as
    missing is missing (the manifest counts it null; a reader gets the dtype's default); NaN stays NaN."""
    names = names or {}
    manifest = read_manifest(str(out))
    got = records(out, key)
    keys = [str(k) for k in frame[key]]
    assert sorted(got) == sorted(keys)
    for column in frame.columns:
        feature = names.get(column, column)
        dtype = manifest.features[feature].dtype
        nulls = 0
        for row_key, want in zip(keys, frame[column]):
            value = got[row_key][feature]
            if isinstance(want, float) and math.isnan(want) and dtype == "float32" and math.isnan(value):
                continue  # a NaN spelling in a numeric column: NaN, as pandas holds it
            if pd.isna(want):
                nulls += 1
                assert value == DEFAULTS[dtype], (column, row_key)
            elif dtype == "string":
                assert value == str(want).encode(), (column, row_key)
            elif dtype == "float32":
                assert value == np.float32(want), (column, row_key)
            else:
                assert value == int(want), (column, row_key)
        assert manifest.table.columns[feature].stats.null_count == nulls, column


def run_job(argv: list[str], capsys) -> tuple[int, str, str]:
    code = job.main([*argv, "--quiet"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def options(csv: Path, out: Path, **more) -> TableConvertOptions:
    values = dict(output=str(out), label="y", input=str(csv), splits=(("train", 1.0),), num_shards=1)
    values.update(more)
    return TableConvertOptions(**values)


R_WRITE_CSV = (  # R: write.csv(data.frame(...)): a row-name column named "", quoted factors and text, NA, Inf, NaN
    '"","id","name","x","grp","y"\n'
    '"1",1,"Edward ""Edd"" Kimber",1.5,"a",2.5\n'
    '"2",2,NA,NA,"b",0.5\n'
    '"3",3,"two\nlines, and a comma",Inf,"a",1\n'
    '"4",4,"plain",-Inf,NA,3\n'
    '"5",5,"x",NaN,"b",4\n'
    '"6",6,"say ""hi""\nthen go",2.25,"a",5.5\n'
)


@needs_tfrecord_jar
def test_r_write_csv_converts_as_pandas_reads_it(spark, tmp_path):
    csv = tmp_path / "r.csv"
    csv.write_text(R_WRITE_CSV, encoding="utf-8")
    out = tmp_path / "out"
    summary = convert_table(spark, options(csv, out, key="id", task="regression"))
    frame = pd.read_csv(csv)
    assert summary.records == {"train": len(frame)} and summary.rejected == {}
    # pandas names the empty header "Unnamed: 0", Spark "_c0"
    assert_equals_pandas(out, frame, "id", {"Unnamed: 0": "_c0"})
    types = {k: v.source_type for k, v in read_manifest(str(out)).table.columns.items()}
    assert types == {"_c0": "int", "id": "int", "name": "string", "x": "double", "grp": "string", "y": "double"}
    text = summary.text()
    assert "read as missing (NA, N/A, null, None, nan... as pandas): name 1, x 1, grp 1" in text
    assert "read as non-finite (inf, -inf, Infinity, NaN...): x 3" in text


@needs_tfrecord_jar
def test_pandas_to_csv_converts_as_pandas_reads_it(spark, tmp_path):
    source = pd.DataFrame(
        {
            "id": range(8),
            "x": [0.5, np.nan, np.inf, -np.inf, 1e-3, 2.0, -7.25, 3.0],
            "n": [1, 2, 3, 4, 5, 6, 7, 2**40],
            "flag": [True, False, True, True, False, False, True, False],
            "text": ['quote " inside', "comma, inside", "new\nline", None, "", "plain", "NA", "é ü"],
            "y": ["a", "b", "a", "b", "a", "b", "a", "b"],
        }
    )
    csv = tmp_path / "p.csv"
    source.to_csv(csv, index=False)
    out = tmp_path / "out"
    summary = convert_table(spark, options(csv, out, key="id"))
    frame = pd.read_csv(csv)
    assert summary.records == {"train": 8} and summary.rejected == {}
    frame["flag"] = frame["flag"].astype(int)  # booleans are int64 features
    assert_equals_pandas(out, frame, "id")
    types = {k: v.source_type for k, v in read_manifest(str(out)).table.columns.items()}
    assert types == {"id": "int", "x": "double", "n": "bigint", "flag": "boolean", "text": "string", "y": "string"}


@needs_tfrecord_jar
def test_every_missing_and_non_finite_spelling_keeps_a_numeric_column_numeric(spark, tmp_path):
    spellings = [s for s in NA_SPELLINGS if s] + ["inf", "-inf", "Infinity", "-Infinity", "+inf", "INF"]
    lines = ["id,v,i,word,y"]
    for n, spelling in enumerate(spellings):
        quoted = f'"{spelling}"' if "," in spelling else spelling
        blank = spelling in NA_SPELLINGS and spelling not in NAN_SPELLINGS  # missing in an int column too
        lines.append(f"{n},{quoted},{quoted if blank and n % 3 == 0 else n},{quoted},{n * 0.5}")
    lines += [f"{n},{n}.5,{n},w{n},{n}" for n in range(len(spellings), len(spellings) + 5)]
    csv = tmp_path / "spellings.csv"
    csv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    summary = convert_table(spark, options(csv, out, key="id", max_reject_fraction=0.0))
    frame = pd.read_csv(csv)
    assert summary.records == {"train": len(frame)} and summary.task == "regression"
    assert frame.dtypes["v"] == np.float64 and frame.dtypes["word"].kind == "O"
    assert_equals_pandas(out, frame, "id")
    types = {k: v.source_type for k, v in read_manifest(str(out)).table.columns.items()}
    assert types == {"id": "int", "v": "double", "i": "int", "word": "string", "y": "double"}
    na_count = len([s for s in NA_SPELLINGS if s]) - 8  # the 8 NaN spellings are NaN in a numeric column
    assert f"read as missing (NA, N/A, null, None, nan... as pandas): v {na_count}" in summary.text()


@needs_tfrecord_jar
def test_a_tsv_with_comment_lines_through_the_job(spark, tmp_path, capsys):
    tsv = tmp_path / "cars.tsv"
    tsv.write_text(
        "# exported 2024-01-05\nyear\tmake\tmodel\n# a comment line\n2001\tFord\tT\n2002\tNA\tK\n2003\tFord\tA\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    argv = ["--input", str(tsv), "--label", "make", "--key", "year", "--output", str(out), "--num-shards", "1"]
    argv += ["--splits", "train=1.0", "--max-reject-fraction", "0.5"]
    code, _, err = run_job(argv, capsys)
    assert code == 2 and err.startswith("error: ") and len(err.splitlines()) == 1  # without the options
    code, printed, err = run_job([*argv, "--read-option", "sep=\\t", "--read-option", "comment=#"], capsys)
    assert code == 0, err
    frame = pd.read_csv(tsv, sep="\t", comment="#")
    assert printed.startswith(f"Converted 2 of 3 rows into {out}")
    assert [(r["key"], r["column"], r["reason"]) for r in rejected(out)] == [("2002", "make", "null_label")]
    assert_equals_pandas(out, frame.dropna(subset=["make"]), "year")


@needs_tfrecord_jar
def test_a_latin1_csv_stops_with_one_line_then_converts_with_its_encoding(spark, tmp_path, capsys):
    csv = tmp_path / "latin1.csv"
    csv.write_bytes("id,name,y\n1,José,a\n2,Zoë,b\n3,plain,a\n".encode("latin-1"))
    out = tmp_path / "out"
    argv = ["--input", str(csv), "--label", "y", "--key", "id", "--output", str(out), "--splits", "train=1.0"]
    code, printed, err = run_job(argv, capsys)
    assert (code, printed) == (2, "")
    assert err == (
        f"error: {csv} is not UTF-8: column 'name' holds bytes that do not decode (e.g. 'Jos\ufffd'); "
        "pass the file's encoding, e.g. --read-option encoding=latin1 (or cp1252)\n"
    )
    assert not out.exists()
    code, _, err = run_job([*argv, "--read-option", "encoding=latin1"], capsys)
    assert code == 0, err
    assert_equals_pandas(out, pd.read_csv(csv, encoding="latin1"), "id")


def test_a_cp1252_csv_reads_on_spark_3_and_is_refused_in_one_line_on_spark_4(spark, tmp_path):
    csv = tmp_path / "cp1252.csv"
    csv.write_bytes("id,name\n1,5 €\n".encode("cp1252"))
    read_options = (("encoding", "cp1252"),)
    if int(spark.version.split(".")[0]) < 4:  # any Java charset
        assert read_table(spark, str(csv), "csv", read_options).frame.collect()[0]["name"] == "5 €"
        return
    with pytest.raises(ConversionError) as refused:
        read_table(spark, str(csv), "csv", read_options)
    assert str(refused.value) == (
        f"cannot read {csv} as csv: --read-option encoding=cp1252: Spark {spark.version} reads only iso-8859-1, "
        "us-ascii, utf-8, utf-16, utf-16be, utf-16le, utf-32; re-encode the file to UTF-8 (e.g. iconv) or set "
        "spark.sql.legacy.javaCharsets=true"
    )


def test_a_genuine_replacement_character_in_utf8_is_kept(spark, tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text("id,name\n1,a\ufffdb\n", encoding="utf-8")
    assert read_table(spark, str(csv), "csv").frame.collect()[0]["name"] == "a\ufffdb"


@needs_tfrecord_jar
def test_backslash_escapes_are_one_read_option_away(spark, tmp_path):
    csv = tmp_path / "b.csv"
    csv.write_text('id,text,y\n1,"say \\"hi\\"",a\n2,"plain",b\n', encoding="utf-8")
    out = tmp_path / "out"
    convert_table(spark, options(csv, out, key="id", read_options=(("escape", "\\"),)))
    assert_equals_pandas(out, pd.read_csv(csv, escapechar="\\"), "id")


@needs_tfrecord_jar
def test_quoted_newlines_in_a_file_split_across_tasks_are_found_and_read_whole(spark, tmp_path):
    rows = [
        f'{i},"line {i}\nand ""more"", {i}",{i % 3}' if i % 7 == 0 else f"{i},plain {i},{i % 3}" for i in range(300)
    ]
    csv = tmp_path / "big.csv"
    csv.write_text("id,note,y\n" + "\n".join(rows) + "\n", encoding="utf-8")
    plain = tmp_path / "plain.csv"
    plain.write_text("id,note,y\n" + "".join(f"{i},n{i},{i % 3}\n" for i in range(300)), encoding="utf-8")
    spark.conf.set("spark.sql.files.maxPartitionBytes", "2048")  # the files span several tasks
    try:
        summary = convert_table(spark, options(csv, tmp_path / "out", key="id"))
        plain_summary = convert_table(spark, options(plain, tmp_path / "plain", key="id"))
    finally:
        spark.conf.unset("spark.sql.files.maxPartitionBytes")
    frame = pd.read_csv(csv)
    assert summary.records == {"train": len(frame)} == {"train": 300} and summary.rejected == {}
    assert f"read {csv}: multiLine (a quoted value holds a newline in {csv}" in summary.text()
    assert_equals_pandas(tmp_path / "out", frame, "id")
    assert "multiLine" not in plain_summary.text()  # no open quote: read line by line, in parallel


@needs_tfrecord_jar
def test_an_empty_label_column_stops_with_one_line(spark, tmp_path, capsys):
    csv = tmp_path / "t.csv"
    csv.write_text("id,x,y\n1,2,\n2,3,\n3,4,NA\n", encoding="utf-8")
    out = tmp_path / "out"
    code, printed, err = run_job(["--input", str(csv), "--label", "y", "--output", str(out)], capsys)
    assert (code, printed) == (2, "")
    assert (
        err
        == f"error: label column 'y' is empty in every row of {csv}; choose another --label (or fill the column in the source)\n"
    )
    assert not out.exists()


@needs_tfrecord_jar
def test_all_null_one_value_and_empty_string_columns_convert(spark, tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text(
        "id,nothing,same,empty,y\n" + "".join(f'{i},,7,"",{"ab"[i % 2]}\n' for i in range(6)), encoding="utf-8"
    )
    out = tmp_path / "out"
    summary = convert_table(spark, options(csv, out, key="id"))
    assert summary.records == {"train": 6} and summary.rejected == {}
    assert_equals_pandas(out, pd.read_csv(csv), "id")
    same = convert_table(spark, options(csv, tmp_path / "label7", key="id", label="same"))
    assert same.records == {"train": 6} and read_manifest(str(tmp_path / "label7")).labels == ("7",)
    with pytest.raises(ConversionError) as err:  # every row rejected: one line naming the column
        convert_table(spark, options(csv, tmp_path / "strict", key="id", null_policy="reject", max_reject_fraction=1))
    assert str(err.value).startswith(
        f"every row of {csv} was rejected (null in column 'nothing': 6); nothing was written: "
        "drop or fill that column, or pass --null-policy keep (leave it missing) or fill; see "
    )
    assert not (tmp_path / "strict").exists()


def test_a_text_label_with_nearly_one_class_per_row_stops(spark, tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text("id,y\n" + "".join(f"{i},name {i}\n" for i in range(120)), encoding="utf-8")
    with pytest.raises(ConversionError) as err:
        convert_table(spark, options(csv, tmp_path / "out"))
    message = str(err.value)
    assert message.startswith("label column 'y' has about 1") and " different values in 120 rows (e.g. " in message
    assert message.endswith(
        "nearly one class per row; pass --task classification to keep it so, "
        "or --task regression with --schema 'y DOUBLE' if it holds numbers"
    )
    assert not (tmp_path / "out").exists()


@needs_tfrecord_jar
def test_a_column_numeric_but_for_a_few_values_stops_then_converts_with_null_value(spark, tmp_path, capsys):
    csv = tmp_path / "t.csv"
    csv.write_text("id,x,y\n" + "".join(f"{i},{'?' if i in (4, 9) else i * 1.5},{i % 2}\n" for i in range(30)))
    out, kept = tmp_path / "out", tmp_path / "kept"
    argv = ["--input", str(csv), "--label", "y", "--key", "id", "--splits", "train=1.0", "--output"]
    code, printed, err = run_job([*argv, str(out)], capsys)
    assert (code, printed) == (2, "")
    assert err == (
        "error: column 'x' holds numbers but for '?'; if those mean missing, pass --read-option nullValue=? "
        "(one spelling) or clean them; to keep the column as text, pass --schema 'x STRING'\n"
    )
    assert run_job([*argv, str(out), "--read-option", "nullValue=?"], capsys)[0] == 0
    assert_equals_pandas(out, pd.read_csv(csv, na_values=["?"]), "id")
    assert read_manifest(str(out)).table.columns["x"].source_type == "double"
    assert run_job([*argv, str(kept), "--schema", "x STRING"], capsys)[0] == 0
    assert read_manifest(str(kept)).table.columns["x"].source_type == "string"


def test_iso_dates_and_timestamps_are_typed_where_spark_infers_them(spark, tmp_path):
    csv = tmp_path / "d.csv"
    csv.write_text(
        "d,ts,loose,tz,dmy,mixed,n\n"
        "2024-01-05,2024-01-05 10:00:00,2024-1-5,2024-01-05T10:00:00Z,05/01/2024,2024-01-05,1\n"
        "2024-02-29,2024-02-29 11:30,2024-01-15,2024-01-05T10:00:00+02:00,06/01/2024,2024-01-05 10:00,2\n",
        encoding="utf-8",
    )
    ours = read_table(spark, str(csv), "csv").frame
    spark_inferred = spark.read.option("header", "true").option("inferSchema", "true").csv(str(csv))
    assert [(f.name, f.dataType) for f in ours.schema.fields if f.name != "_corrupt_record"] == [
        (f.name, f.dataType) for f in spark_inferred.schema.fields
    ]
    assert ours.drop("_corrupt_record").collect() == spark_inferred.collect()


def test_a_partial_schema_overrides_only_its_columns(spark, tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text("id,code,x\n1,NA,1.5\n2,007,NA\n3,x,2\n", encoding="utf-8")
    frame = read_table(spark, str(csv), "csv", schema="code STRING, x FLOAT").frame
    assert frame.schema.simpleString() == "struct<id:int,code:string,x:float,_corrupt_record:string>"
    assert [tuple(r) for r in frame.collect()] == [(1, "NA", 1.5, None), (2, "007", None, None), (3, "x", 2.0, None)]
    bad = read_table(spark, str(csv), "csv", schema="code INT").frame.collect()
    assert [r["_corrupt_record"] for r in bad] == [None, None, '{"id":"3","code":"x","x":"2"}']


def test_read_options_the_job_owns_are_refused(tmp_path):
    with pytest.raises(OptionError, match="--read-option mode is set by the job itself"):
        options(tmp_path / "t.csv", tmp_path / "out", read_options=(("mode", "FAILFAST"),))


@needs_tfrecord_jar
def test_the_databricks_notebook_converts_a_tsv_with_its_read_options_widget(spark, tmp_path):
    from tests.test_databricks import run_notebook

    tsv = tmp_path / "t.tsv"
    tsv.write_text("id\tname\ty\n" + "".join(f"{i}\tn{i}\t{'ab'[i % 2]}\n" for i in range(20)), encoding="utf-8")
    out = tmp_path / "out"
    values = {"input": str(tsv), "output": str(out), "label": "y", "key": "id", "num_shards": "1"}
    converted = run_notebook("convert_table.py", spark, {**values, "read_options": '{"sep": "\\t"}'})
    summary = converted["summary"]
    assert sum(summary.records.values()) == 20 and summary.rejected == {}
    assert_equals_pandas(out, pd.read_csv(tsv, sep="\t"), "id")
