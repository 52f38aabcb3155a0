"""The conversion install (`pip install .`) without TensorFlow: imports, images read back by an
independent reader, and the one-line refusals of what needs TensorFlow or Spark 3.5.

`make test-spark4` runs this module on Spark 4 without TensorFlow; `make test` on Spark 3.5.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import struct
import subprocess
import sys
from pathlib import Path

import google_crc32c
import pytest

from conversion.images.convert import convert_images
from conversion.images.options import ImageConvertOptions
from dataset.errors import SparkSetupError
from jobs import convert_table as convert_table_job
from jobs import export_parquet as export_parquet_job
from jobs import validate as validate_job
from jobs.tfrecord_jar import require_tfrecord_spark
from tests.images import image_bytes, write

REPO = Path(__file__).resolve().parents[1]
CONVERSION_JOBS = ["jobs.convert_images", "jobs.convert_table", "jobs.export_parquet", "jobs.spark_cli", "jobs.errors"]
HAS_TF = importlib.util.find_spec("tensorflow") is not None

# Imports each module in turn and prints the first after which TensorFlow or Horovod is loaded.
IMPORT_EACH = """
import importlib, json, pkgutil, sys
names = []
for package in ("conversion", "dataset"):
    root = importlib.import_module(package)
    names += [package] + [m.name for m in pkgutil.walk_packages(root.__path__, package + ".")]
names += sys.argv[1:]
culprit = None
for name in names:
    importlib.import_module(name)
    loaded = sorted(m for m in ("tensorflow", "horovod") if m in sys.modules)
    if loaded and culprit is None:
        culprit = [name, loaded]
print(json.dumps({"imported": names, "culprit": culprit}))
"""


def test_conversion_modules_import_without_tensorflow_or_horovod():
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_EACH, *CONVERSION_JOBS],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["culprit"] is None, f"{result['culprit'][0]} imports {result['culprit'][1]} at import time"
    for name in ("conversion.images.writer", "conversion.tables.convert", "dataset.check", "dataset.manifest"):
        assert name in result["imported"]
    assert result["imported"][-len(CONVERSION_JOBS) :] == CONVERSION_JOBS


# --- An independent TFRecord + tf.train.Example reader (shares no code with the writers) ---


def _masked_crc(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def tfrecords(data: bytes) -> list[bytes]:
    """The records of a TFRecord file, checking both CRCs of each and that nothing trails."""
    records, at = [], 0
    while at < len(data):
        header = data[at : at + 12]
        assert len(header) == 12, f"truncated header at byte {at}"
        (length,) = struct.unpack("<Q", header[:8])
        assert struct.unpack("<I", header[8:])[0] == _masked_crc(header[:8]), f"length CRC at byte {at}"
        body = data[at + 12 : at + 12 + length]
        (crc,) = struct.unpack("<I", data[at + 12 + length : at + 16 + length])
        assert len(body) == length and crc == _masked_crc(body), f"data CRC at byte {at}"
        records.append(body)
        at += 16 + length
    return records


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at, shift = at + 1, shift + 7
        if byte < 0x80:
            return value, at


def _fields(data: bytes) -> list[tuple[int, int, object]]:
    """(field number, wire type, value) of a protobuf message: ints for varint/fixed, bytes for LEN."""
    out, at = [], 0
    while at < len(data):
        key, at = _varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, at = _varint(data, at)
        elif wire == 2:
            length, at = _varint(data, at)
            value, at = data[at : at + length], at + length
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, at = data[at : at + size], at + size
        else:
            raise AssertionError(f"wire type {wire} in an Example")
        out.append((number, wire, value))
    return out


def _feature_values(feature: bytes) -> list:
    """Feature{bytes_list=1 | float_list=2 | int64_list=3}, packed or not."""
    [(kind, _, inner)] = _fields(feature)
    values = []
    for _, wire, value in _fields(inner):
        if kind == 1:
            values.append(value)
        elif kind == 3:
            if wire == 0:
                values.append(value - (1 << 64) if value >= 1 << 63 else value)
            else:
                at = 0
                while at < len(value):
                    item, at = _varint(value, at)
                    values.append(item - (1 << 64) if item >= 1 << 63 else item)
        else:  # float32: 4 bytes unpacked (wire 5) or any number packed (wire 2)
            values.extend(struct.unpack(f"<{len(value) // 4}f", value))
    return values


def parse_example(record: bytes) -> dict[str, list]:
    """Example{features=1: Features{feature=1: map<string, Feature>}} as name → values."""
    [(number, wire, features)] = _fields(record)
    assert (number, wire) == (1, 2), "an Example is one length-delimited field 1"
    parsed = {}
    for _, _, entry in _fields(features):
        parts = {number: value for number, _, value in _fields(entry)}
        parsed[parts[1].decode("utf-8")] = _feature_values(parts[2])
    return parsed


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_image_shards_read_back_by_an_independent_reader(spark, tmp_path, compression):
    sources = {}
    for label, count in (("cat", 7), ("dog", 5)):
        for i in range(count):
            relpath = f"{label}/{i}.png"
            sources[relpath] = write(
                tmp_path / "in", relpath, image_bytes("PNG", (9, 7), seed=i + 50 * len(label))
            ).read_bytes()
    write(tmp_path / "in", "dog/broken.png", b"not a png")
    out = tmp_path / "out"
    convert_images(
        spark,
        ImageConvertOptions(
            str(tmp_path / "in"), str(out), num_shards=2, compression=compression, max_reject_fraction=0.5
        ),
    )

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["labels"] == ["cat", "dog"] and (out / "_SUCCESS").exists()
    seen = {}
    for split, info in manifest["splits"].items():
        for shard in info["files"]:
            assert shard["path"].endswith(".tfrecord.gz" if compression == "gzip" else ".tfrecord")
            raw = (out / shard["path"]).read_bytes()
            records = tfrecords(gzip.decompress(raw) if compression == "gzip" else raw)
            assert len(records) == shard["num_records"] > 0
            for record in records:
                example = parse_example(record)
                [name] = example["image/filename"]
                [encoded] = example["image/encoded"]
                assert name.decode() not in seen
                seen[name.decode()] = split
                label = name.decode().split("/")[0]
                assert encoded == sources[name.decode()]
                assert example["image/key/sha256"] == [hashlib.sha256(encoded).hexdigest().encode()]
                assert example["image/class/text"] == [label.encode()]
                assert example["image/class/label"] == [manifest["labels"].index(label)]
                assert (example["image/width"], example["image/height"], example["image/channels"]) == ([9], [7], [3])
                assert example["image/format"] == [b"png"]
    assert set(seen) == set(sources)
    assert manifest["num_rejected"] == {"undecodable": 1}


# --- What the conversion install refuses, in one line ---


@pytest.fixture(scope="module")
def one_image_dataset(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("one")
    write(root / "in", "a/0.png", image_bytes("PNG"))
    convert_images(spark, ImageConvertOptions(str(root / "in"), str(root / "out"), num_shards=1))
    return root / "out"


def test_tfrecord_jobs_need_spark_35():
    require_tfrecord_spark("3.5.1", "tables")
    with pytest.raises(SparkSetupError, match=r"^tables need Spark 3\.5 with spark-tfrecord .*this is Spark 4\.0\.0: "):
        require_tfrecord_spark("4.0.0", "tables")
    with pytest.raises(SparkSetupError, match=r"this is Spark 3\.4\.3"):
        require_tfrecord_spark("3.4.3", "tables")


@pytest.mark.skipif(sys.modules["pyspark"].__version__.startswith("3.5."), reason="Spark 3.5 converts tables")
def test_on_spark_4_the_table_and_parquet_jobs_say_they_need_spark_35(spark, one_image_dataset, tmp_path, capsys):
    write(tmp_path, "t.csv", b"a,label\n1,0\n2,1\n")
    args = ["--input", str(tmp_path / "t.csv"), "--label", "label", "--output", str(tmp_path / "tables")]
    assert convert_table_job.main(args) == 2
    err = capsys.readouterr().err
    assert (
        err
        == (  # the session set-up refuses before the table job's own check would
            "error: jobs that read or write format('tfrecord') need Spark 3.5 with spark-tfrecord "
            "(com.linkedin.sparktfrecord:spark-tfrecord_2.12:0.7.0, "
            f"Scala 2.12), and this is Spark {spark.version}: run this job on Spark 3.5; image folders convert on "
            "Spark 3.5 and 4.x\n"
        )
    )
    assert not (tmp_path / "tables").exists()
    assert export_parquet_job.main(["--data", str(one_image_dataset), "--output", str(tmp_path / "pq")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: jobs that read or write format('tfrecord') need Spark 3.5") and err.count("\n") == 1
    assert not (tmp_path / "pq").exists()


@pytest.mark.skipif(HAS_TF, reason="TensorFlow is installed: validate reads with tf.data")
def test_validate_without_tensorflow_is_one_line(one_image_dataset, capsys):
    for args in (["--data", str(one_image_dataset)], ["--data", str(one_image_dataset), "--inspect", "1"]):
        assert validate_job.main(args) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: reading shards with tf.data needs TensorFlow") and err.count("\n") == 1
