"""The validate job on good and damaged datasets."""

from __future__ import annotations

import shutil

import pytest

from conversion.images.convert import convert_images
from conversion.images.options import ImageConvertOptions
from dataset.check import inspect_examples, validate_dataset
from dataset.errors import DatasetError
from jobs import validate as validate_job
from tests.images import image_bytes, write


@pytest.fixture(scope="module")
def dataset(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("vin")
    for label in ("x", "y"):
        for i in range(12):
            write(root, f"{label}/{i}.png", image_bytes("PNG", (16, 16), seed=i + 100 * (label == "y")))
    out = tmp_path_factory.mktemp("vout") / "data"
    convert_images(
        spark, ImageConvertOptions(str(root), str(out), splits=(("train", 0.5), ("test", 0.5)), num_shards=2)
    )
    return out


def damaged(dataset, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(dataset, copy)
    return copy, copy / "train-00001-of-00002.tfrecord"


@pytest.mark.needs_tf
def test_good_dataset_validates_and_inspects(dataset, capsys):
    report = validate_dataset(str(dataset))
    assert (report.num_shards, report.num_records) == (4, 24)
    assert sum(report.records_per_split.values()) == 24
    assert validate_job.main(["--data", str(dataset)]) == 0
    assert capsys.readouterr().out.startswith(f"OK {dataset}: 24 records in 4 shards")
    rows = list(inspect_examples(str(dataset), "test", 2))
    assert len(rows) == 2 and rows[0]["image/format"] == "png" and rows[0]["image/encoded"].endswith("bytes>")


@pytest.mark.needs_tf
def test_flipped_byte_names_the_shard_and_offset(dataset, tmp_path, capsys):
    copy, shard = damaged(dataset, tmp_path)
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0x01
    shard.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match=r"corrupt shard .*train-00001-of-00002.tfrecord at byte offset \d+"):
        validate_dataset(str(copy))
    assert validate_job.main(["--data", str(copy)]) == 2  # every job: a user's problem exits with 2
    err = capsys.readouterr().err
    assert err.startswith("error: corrupt shard") and "train-00001-of-00002.tfrecord" in err and err.count("\n") == 1


@pytest.mark.needs_tf
def test_shard_cut_short_names_the_shard(dataset, tmp_path):
    copy, shard = damaged(dataset, tmp_path)
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) - 100])
    with pytest.raises(DatasetError, match=r"train-00001-of-00002.tfrecord"):
        validate_dataset(str(copy))


def test_missing_folder_manifest_and_split(dataset, tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        validate_dataset(str(tmp_path / "nope"))
    copy, _ = damaged(dataset, tmp_path)
    (copy / "_SUCCESS").unlink()
    with pytest.raises(DatasetError, match="no _SUCCESS or manifest.json: it is not a finished conversion"):
        validate_dataset(str(copy))
    with pytest.raises(DatasetError, match="split 'nope' is not in"):
        list(inspect_examples(str(dataset), "nope", 1))
