"""Record indexes (`<shard>.idx`, the `tfrecord` package's and DALI's format): written by conversions, checked by
validate, written for an existing dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conversion.images.convert import convert_images
from conversion.images.options import ImageConvertOptions
from dataset.check import validate_dataset
from dataset.errors import DatasetError
from dataset.object_store import s3_filesystem
from dataset.random_access import read_record
from dataset.record_index import _mapped, write_index
from dataset.tfrecord import FrameError
from dataset.vacuum import plan_vacuum
from dataset.versions import read_version
from jobs import convert_table
from jobs import versions as versions_job
from tests.example_reader import index_lines, tfrecords
from tests.images import image_bytes, write
from tests.s3server import s3_bucket_fixture

s3 = s3_bucket_fixture(scope="module")


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
    convert_images(
        spark, ImageConvertOptions(str(images), str(out), splits=(("train", 0.6), ("test", 0.4)), num_shards=2)
    )
    return out


def test_image_conversion_writes_one_index_per_shard(indexed):
    files = listed(indexed)
    assert len(files) == 4
    for f in files:
        assert f["index"] == f"{f['path']}.idx"
        text = (indexed / f["index"]).read_text()
        assert text == index_lines((indexed / f["path"]).read_bytes())
        assert len(text.splitlines()) == f["num_records"]
        assert sum(int(line.split()[1]) for line in text.splitlines()) == f["bytes"]


def test_the_length_walk_of_a_local_shard_writes_the_checked_index_and_finds_a_cut_record(indexed, tmp_path):
    """Without CRCs (a table job's own shards) a local shard is mapped, not read: the same index as the checked
    walk; a cut last record and a cut header fail naming the byte; an empty shard is no record."""
    shard = indexed / listed(indexed)[0]["path"]
    data = shard.read_bytes()
    assert _mapped(str(shard)) is not None  # the mapped path is the one walked
    out = tmp_path / "walked.idx"
    assert write_index(str(shard), str(out), check_crcs=False) == len(index_lines(data).splitlines())
    assert out.read_text() == index_lines(data)
    last = int(index_lines(data).splitlines()[-1].split()[0])
    for cut, offset, cause in ((len(data) - 3, last, "a record is cut"), (last + 5, last, "a frame header is cut")):
        (tmp_path / "cut.tfrecord").write_bytes(data[:cut])
        with pytest.raises(FrameError, match=f"truncated at byte {offset} \\({cause}\\)"):
            write_index(str(tmp_path / "cut.tfrecord"), str(tmp_path / "cut.idx"), check_crcs=False)
    (tmp_path / "empty.tfrecord").write_bytes(b"")
    assert write_index(str(tmp_path / "empty.tfrecord"), str(tmp_path / "empty.idx"), check_crcs=False) == 0
    assert (tmp_path / "empty.idx").read_bytes() == b""


@pytest.fixture(scope="module")
def gzipped(spark, images, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("idx-gz") / "data"
    convert_images(spark, ImageConvertOptions(str(images), str(out), num_shards=1, compression="gzip"))
    return out


def test_gzip_shards_get_no_index(gzipped):
    assert [f["index"] for f in listed(gzipped)] == [None] * len(listed(gzipped))
    assert not list(gzipped.rglob("*.idx"))


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


def test_table_conversion_indexes_each_shard_after_the_write(spark, tmp_path):
    csv = tmp_path / "rows.csv"
    csv.write_text("id,x,label\n" + "".join(f"{i},{i * 0.5},{'ab'[i % 2]}\n" for i in range(12)))
    out = tmp_path / "table"
    argv = ["--input", str(csv), "--output", str(out), "--label", "label", "--key", "id", "--num-shards", "2"]
    assert convert_table.main(argv) == 0
    files = listed(out)
    assert sum(f["num_records"] for f in files) == 12
    for f in files:
        assert f["index"] == f"{f['path']}.idx"
        assert (out / f["index"]).read_text() == index_lines((out / f["path"]).read_bytes())


def test_write_indexes_on_a_dataset_written_before_indexes(indexed, tmp_path):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(indexed, old)
    for index in old.rglob("*.idx"):  # as this project wrote datasets before indexes: no files, no names
        index.unlink()
    for name in ["manifest.json", *(str(p.relative_to(old)) for p in (old / "_versions").glob("*.json"))]:
        data = json.loads((old / name).read_text())
        for split in data["splits"].values():
            for f in split["files"]:
                del f["index"]
        (old / name).write_text(json.dumps(data))
    shards = {p.relative_to(old): p.read_bytes() for p in old.rglob("*.tfrecord")}
    assert versions_job.main(["--data", str(old), "--write-indexes"]) == 0
    current = read_version(str(old))
    assert (current.number, current.info.operation, current.info.added, current.info.removed) == (2, "index", (), ())
    for split in current.manifest.splits.values():
        for f in split.files:
            assert f.index == f"{f.path}.idx"
            assert (old / f.index).read_text() == index_lines((old / f.path).read_bytes())
    assert {p.relative_to(old): p.read_bytes() for p in old.rglob("*.tfrecord")} == shards  # not rewritten
    assert read_version(str(old), 1).manifest.splits["train"].files[0].index is None  # version 1 as it was
    assert versions_job.main(["--data", str(old), "--write-indexes"]) == 0  # nothing left to index
    assert read_version(str(old)).number == 2


def test_write_indexes_refuses_gzip_in_one_line(gzipped, capsys):
    assert versions_job.main(["--data", str(gzipped), "--write-indexes"]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot seek in compressed shards" in err and "Traceback" not in err
    assert read_version(str(gzipped)).number == 1


def test_an_append_with_replaced_records_indexes_its_new_and_rewritten_shards(spark, images, indexed, tmp_path):
    import shutil

    root, out = tmp_path / "in", tmp_path / "data"
    shutil.copytree(images, root)
    shutil.copytree(indexed, out)
    write(root, "a/0.png", image_bytes("PNG", (9, 9), seed=77))  # changed: its shard is rewritten without it
    write(root, "b/new.png", image_bytes("PNG", (8, 8), seed=78))  # new: in the run's new shards
    options = ImageConvertOptions(
        str(root), str(out), splits=(("train", 0.6), ("test", 0.4)), num_shards=2, mode="append", on_change="replace"
    )
    convert_images(spark, options)
    before = {f["path"] for f in listed(indexed)}
    after = listed(out)
    run = read_version(str(out)).info.run
    assert sum(f["num_records"] for f in after) == 11
    assert {f["path"].split("/")[0] for f in after if f["path"] not in before} == {run}  # new and rewritten shards
    assert any("/rewritten-" in f["path"] for f in after) and any("/train-" in f["path"] for f in after)
    for f in after:
        assert f["index"] == f"{f['path']}.idx"
        assert (out / f["index"]).read_text() == index_lines((out / f["path"]).read_bytes())
    # vacuum: an index goes with its shard (the replaced shard and its index), the kept shards' indexes stay
    gone = before - {f["path"] for f in after}
    doomed = {f.path for f in plan_vacuum(str(out), 1, 0).files if ".tfrecord" in f.path}
    assert gone and doomed == gone | {f"{p}.idx" for p in gone}


def split_records(folder: Path, split: str) -> list[bytes]:
    """A split's records in manifest order, by walking its shards whole (tests/example_reader.py)."""
    manifest = json.loads((folder / "manifest.json").read_text())
    return [r for f in manifest["splits"][split]["files"] for r in tfrecords((folder / f["path"]).read_bytes())]


def test_read_record_returns_record_k_of_a_split_through_the_indexes(indexed, gzipped):
    for split in ("train", "test"):
        records = split_records(indexed, split)
        assert len(records) > 2
        assert [read_record(str(indexed), split, k) for k in range(len(records))] == records
        with pytest.raises(
            DatasetError, match=rf"^split '{split}' of \S+ has {len(records)} records, not {len(records) + 1}$"
        ):
            read_record(str(indexed), split, len(records))
    with pytest.raises(DatasetError, match=r"^shard \S+\.tfrecord\.gz has no record index \(gzip shards have none\)"):
        read_record(str(gzipped), "train", 0)


def test_read_record_on_the_object_store(s3, indexed, monkeypatch):
    for key, value in s3.env().items():
        monkeypatch.setenv(key, value)
    s3_filesystem().put(str(indexed), f"{s3.bucket}/ds", recursive=True)
    records = split_records(indexed, "train")
    url = f"s3://{s3.bucket}/ds"
    assert [read_record(url, "train", k) for k in (len(records) - 1, 0)] == [records[-1], records[0]]
