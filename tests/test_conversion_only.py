"""The conversion install (`pip install .`) without TensorFlow: imports, images read back by an
independent reader, and the one-line refusals of what needs TensorFlow or a Spark spark-tfrecord has no build for.

`make test-spark4` runs this module on Spark 4 without TensorFlow; `make test` on Spark 3.5.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conversion.images.convert import convert_images
from conversion.images.options import ImageConvertOptions
from dataset.errors import SparkSetupError
from jobs import validate as validate_job
from jobs.tfrecord_jar import require_tfrecord_spark
from tests.example_reader import parse_example, tfrecords
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


def test_tfrecord_jobs_need_spark_35_or_4():
    for version in ("3.5.1", "3.5.9", "4.0.0", "4.3.0"):
        require_tfrecord_spark(version, "tables")
    for version in ("3.4.3", "5.0.0"):
        with pytest.raises(SparkSetupError) as caught:
            require_tfrecord_spark(version, "tables")
        assert str(caught.value) == (
            "tables need Spark 3.5 or 4.x (spark-tfrecord 0.7.0 is built for those), "
            f"and this is Spark {version}: run this job on Spark 3.5 or 4.x"
        )


@pytest.mark.skipif(HAS_TF, reason="TensorFlow is installed: validate reads with tf.data")
def test_validate_without_tensorflow_is_one_line(one_image_dataset, capsys):
    for args in (["--data", str(one_image_dataset)], ["--data", str(one_image_dataset), "--inspect", "1"]):
        assert validate_job.main(args) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: reading shards with tf.data needs TensorFlow") and err.count("\n") == 1
