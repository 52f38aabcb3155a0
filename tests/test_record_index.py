"""Record indexes (`<shard>.idx`, the `tfrecord` package's and DALI's format): written by conversions, checked by
validate, written for an existing dataset."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from conversion.images.convert import convert_images
from conversion.images.options import ImageConvertOptions
from dataset.check import validate_dataset
from dataset.errors import DatasetError
from tests.images import image_bytes, write


def walked(shard: Path) -> str:
    """The `offset size` lines of a shard, by reading only each frame's 8-byte length (as tfrecord2idx does)."""
    data, at, lines = shard.read_bytes(), 0, []
    while at < len(data):
        (length,) = struct.unpack_from("<q", data, at)
        lines.append(f"{at} {length + 16}\n")
        at += length + 16
    return "".join(lines)


def listed(folder: Path) -> list[dict]:
    manifest = json.loads((folder / "manifest.json").read_text())
    return [f for split in manifest["splits"].values() for f in split["files"]]


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("idx-in")
    for label in ("a", "b"):
        for i in range(5):
            write(root, f"{label}/{i}.png", image_bytes("PNG", (8 + i, 8), seed=i + 10 * (label == "b")))
    return root


@pytest.fixture(scope="module")
def indexed(spark, images, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("idx-out") / "data"
    convert_images(spark, ImageConvertOptions(str(images), str(out), splits=(("train", 0.6), ("test", 0.4)), num_shards=2))
    return out


def test_image_conversion_writes_one_index_per_shard(indexed):
    files = listed(indexed)
    assert len(files) == 4
    for f in files:
        assert f["index"] == f"{f['path']}.idx"
        text = (indexed / f["index"]).read_text()
        assert text == walked(indexed / f["path"])
        assert len(text.splitlines()) == f["num_records"]
        assert sum(int(line.split()[1]) for line in text.splitlines()) == f["bytes"]


def test_gzip_shards_get_no_index(spark, images, tmp_path):
    out = tmp_path / "gz"
    convert_images(spark, ImageConvertOptions(str(images), str(out), num_shards=1, compression="gzip"))
    assert [f["index"] for f in listed(out)] == [None] * len(listed(out))
    assert not list(out.rglob("*.idx"))


@pytest.mark.needs_tf
def test_validate_names_a_damaged_index(indexed, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(indexed, copy)
    validate_dataset(str(copy), decode_sample=0)
    index = next(f["index"] for f in listed(copy) if f["num_records"] > 1)
    lines = (copy / index).read_text().splitlines()
    offset, size = lines[1].split()
    lines[1] = f"{offset} {int(size) + 1}"
    (copy / index).write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=rf"^index \S+{index.split('/')[-1]} line 2 says {offset} {int(size) + 1}"):
        validate_dataset(str(copy), decode_sample=0)
    (copy / index).unlink()
    with pytest.raises(DatasetError, match=r"^index \S+\.idx listed in the manifest is missing"):
        validate_dataset(str(copy), decode_sample=0)
