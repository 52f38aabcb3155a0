"""The validate job on good and damaged datasets."""

from __future__ import annotations

import json
import shutil

import pytest

from conversion.images.convert import convert_images
from conversion.images.options import ImageConvertOptions, ImageTransform
from dataset.check import inspect_examples, validate_dataset
from dataset.errors import DatasetError
from dataset.tfrecord import frame
from dataset.versions import read_manifest
from jobs import validate as validate_job
from tests.images import corrupt_png, image_bytes, write


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
    (run,) = copy.glob("run-*")
    return copy, run / "train-00001-of-00002.tfrecord"


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
    offsets = _record_offsets(bytes(data))
    hit = max(i for i, at in enumerate(offsets) if at <= len(data) // 2)  # the record holding the byte
    message = (
        rf"^corrupt shard file://{shard} at byte offset {offsets[hit]} \(after {hit} good records\): "
        "the (length|record) CRC does not match$"
    )
    with pytest.raises(DatasetError, match=message):
        validate_dataset(str(copy))
    assert validate_job.main(["--data", str(copy)]) == 2  # every job: a user's problem exits with 2
    err = capsys.readouterr().err
    assert err.startswith("error: corrupt shard") and "train-00001-of-00002.tfrecord" in err and err.count("\n") == 1


@pytest.mark.needs_tf
def test_shard_cut_short_names_the_shard(dataset, tmp_path):
    copy, shard = damaged(dataset, tmp_path)
    data = shard.read_bytes()
    offsets = _record_offsets(data)
    shard.write_bytes(data[: len(data) - 100])
    last = len(offsets) - 1
    size = len(data) - offsets[last] - 16
    with pytest.raises(
        DatasetError,
        match=rf"^corrupt shard file://{shard} at byte offset {offsets[last]} \(after {last} good records\): "
        rf"a record of {size} bytes is cut$",
    ):
        validate_dataset(str(copy))


@pytest.mark.needs_tf
def test_a_record_that_is_not_an_example_is_named(dataset, tmp_path):
    """Its frame and CRCs are whole (and its index right): only parsing finds it."""
    copy, shard = damaged(dataset, tmp_path)
    data = shard.read_bytes()
    offsets = _record_offsets(data)
    at = offsets[3]
    length = int.from_bytes(data[at : at + 8], "little")
    shard.write_bytes(data[:at] + frame(b"\xff" * length) + data[at + 16 + length :])
    with pytest.raises(
        DatasetError,
        match=rf"^corrupt shard file://{shard} at record 3 \(after 3 good records\): it is not a tf.train.Example$",
    ):
        validate_dataset(str(copy), decode_sample=0)


@pytest.mark.needs_tf
def test_a_shard_missing_or_holding_another_count_is_named(dataset, tmp_path):
    copy, shard = damaged(dataset, tmp_path)
    path = str(shard.relative_to(copy))

    def recount(manifest):
        (listed,) = [f for f in manifest["splits"]["train"]["files"] if f["path"] == path]
        listed["num_records"] += 1
        manifest["splits"]["train"]["num_records"] += 1
        manifest["num_records"] += 1
        manifest["num_files_seen"] += 1

    _edit_manifest(copy, recount)
    found = len(_record_offsets(shard.read_bytes()))
    with pytest.raises(
        DatasetError, match=rf"^shard file://{shard} holds {found} records, the manifest says {found + 1}$"
    ):
        validate_dataset(str(copy))
    shard.unlink()
    with pytest.raises(DatasetError, match=rf"^shard file://{shard} listed in the manifest is missing$"):
        validate_dataset(str(copy))


def test_missing_folder_manifest_and_split(dataset, tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        validate_dataset(str(tmp_path / "nope"))
    copy, _ = damaged(dataset, tmp_path)
    (copy / "_SUCCESS").unlink()  # and no version: a folder from before versions that did not finish
    shutil.rmtree(copy / "_versions")
    with pytest.raises(DatasetError, match="no _SUCCESS or manifest.json: it is not a finished conversion"):
        validate_dataset(str(copy))
    with pytest.raises(DatasetError, match="split 'nope' is not in"):
        list(inspect_examples(str(dataset), "nope", 1))


def _record_offsets(data: bytes) -> list[int]:
    """Where each record of an uncompressed TFRecord file starts (8-byte length, 4-byte CRC, data, 4-byte CRC)."""
    offsets, at = [], 0
    while at < len(data):
        offsets.append(at)
        at += 16 + int.from_bytes(data[at : at + 8], "little")
    return offsets


@pytest.mark.needs_tf
def test_flipped_byte_says_how_many_records_before_it_were_good(dataset, tmp_path):
    copy, shard = damaged(dataset, tmp_path)
    data = bytearray(shard.read_bytes())
    offsets = _record_offsets(bytes(data))
    assert len(offsets) > 4
    data[offsets[4] + 12 + 5] ^= 0x01  # inside the data of record 4
    shard.write_bytes(bytes(data))
    with pytest.raises(
        DatasetError, match=r"train-00001-of-00002.tfrecord at byte offset \d+ \(after 4 good records\)"
    ):
        validate_dataset(str(copy))


def _edit_manifest(folder, edit) -> None:
    """Edit the current version's manifest (and its copy, manifest.json), as a damaged file would read."""
    for path in (folder / "manifest.json", folder / "_versions" / "00000001.json"):
        manifest = json.loads(path.read_text())
        edit(manifest)
        path.write_text(json.dumps(manifest))


@pytest.mark.needs_tf
def test_a_manifest_that_lost_a_feature_fails_validation_and_training_with_its_name(dataset, tmp_path):
    copy, _ = damaged(dataset, tmp_path)
    _edit_manifest(copy, lambda m: m["features"].pop("image/filename"))
    message = "the manifest lacks features \\['image/filename'\\] that images records hold and training reads"
    with pytest.raises(DatasetError, match=message):
        validate_dataset(str(copy))
    from training.images.parser import image_parser

    with pytest.raises(DatasetError, match="the manifest lists no feature 'image/filename'"):
        image_parser(read_manifest(str(copy)), {"image_size": [8, 8], "channels": 3})


@pytest.mark.needs_tf
def test_a_feature_the_records_lack_is_named_with_the_record(dataset, tmp_path):
    copy, _ = damaged(dataset, tmp_path)
    extra = {"dtype": "int64", "shape": [], "length": "fixed", "spark_type": "bigint"}
    _edit_manifest(copy, lambda m: m["features"].update({"image/depth": extra}))
    with pytest.raises(
        DatasetError,
        match=r"^record 0 of shard file://.*/test-00000-of-00002.tfrecord lacks feature 'image/depth' \(int64\) "
        "that the manifest lists; the manifest does not describe these records: convert the data again$",
    ):
        validate_dataset(str(copy))


@pytest.mark.needs_tf
def test_images_are_decoded_with_trainings_decoder_unless_asked_not_to(spark, tmp_path, capsys):
    root = tmp_path / "in"
    for i in range(6):
        write(root, f"x/{i}.png", image_bytes("PNG", (16, 16), seed=i))
    write(root, "x/bad.png", corrupt_png(3))
    out = tmp_path / "data"
    convert_images(
        spark,
        ImageConvertOptions(str(root), str(out), splits=(("train", 1.0),), transform=ImageTransform(verify="header")),
    )
    assert validate_job.main(["--data", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot decode the image of record ") and "(x/bad.png): Invalid PNG data, size " in err
    assert "\n" not in err
    assert validate_job.main(["--data", str(out), "--no-decode"]) == 0
    assert capsys.readouterr().out.startswith(f"OK {out}: 7 records in 1 shards (train 7); CRCs, features, parsing")
    assert validate_job.main(["--data", str(out), "--decode-sample", "0"]) == 2
    assert "--decode-sample must be at least 1" in capsys.readouterr().err


@pytest.mark.needs_tf
def test_files_the_manifest_does_not_list_are_reported(dataset, tmp_path):
    copy, _ = damaged(dataset, tmp_path)
    (copy / "train-00002-of-00003.tfrecord").write_bytes(b"")
    (copy / "notes").mkdir()
    (copy / "notes" / "todo.txt").write_text("x")
    report = validate_dataset(str(copy))
    assert report.unlisted == ("notes/todo.txt", "train-00002-of-00003.tfrecord")
    assert report.num_decoded == 24
    assert report.text().splitlines()[1] == (
        "  note: 2 files are not in the manifest (readers ignore them): notes/todo.txt, train-00002-of-00003.tfrecord"
    )


@pytest.mark.needs_tf
def test_gzip_shards_a_decode_sample_and_a_damaged_gzip_stream(spark, tmp_path):
    root = tmp_path / "in"
    for i in range(8):
        write(root, f"{'xy'[i % 2]}/{i}.png", image_bytes("PNG", (16, 16), seed=i))
    out = tmp_path / "data"
    options = ImageConvertOptions(str(root), str(out), splits=(("train", 1.0),), num_shards=2, compression="gzip")
    convert_images(spark, options)
    report = validate_dataset(str(out))
    assert (report.num_shards, report.num_records, report.num_decoded) == (2, 8, 8)
    assert validate_dataset(str(out), decode_sample=1).num_decoded == 2  # the first record of each shard
    (shard,) = out.glob("run-*/train-00001-of-00002.tfrecord.gz")
    data = bytearray(shard.read_bytes())
    data[-6] ^= 0x01  # in the gzip trailer's CRC-32
    shard.write_bytes(bytes(data))
    with pytest.raises(
        DatasetError, match=rf"^corrupt shard file://{shard}: its gzip stream does not decompress \(CRC check failed"
    ):
        validate_dataset(str(out), decode_sample=0)


@pytest.mark.needs_tf
def test_features_records_may_leave_out_are_counted(dataset, tmp_path):
    """A feature the manifest counts missing values of may be absent from a record, not hold another count."""
    copy, _ = damaged(dataset, tmp_path)
    sometimes = {"dtype": "int64", "shape": [], "length": "fixed", "spark_type": "bigint", "null_count": 3}
    _edit_manifest(copy, lambda m: m["features"].update({"image/depth": sometimes}))
    assert validate_dataset(str(copy)).num_records == 24  # every record leaves it out: allowed

    def two_heights(manifest):
        manifest["features"]["image/height"].update({"shape": [2], "null_count": 1})

    _edit_manifest(copy, two_heights)
    with pytest.raises(
        DatasetError,
        match=r"^record 0 of shard file://.*/test-00000-of-00002.tfrecord has 1 values \(the manifest says 2\) for "
        r"feature 'image/height' \(int64\) that the manifest lists; the manifest does not describe these records",
    ):
        validate_dataset(str(copy))


@pytest.mark.needs_tf
def test_an_undecodable_image_inside_a_decoded_chunk_is_named_by_its_record(spark, tmp_path):
    """Images are decoded a chunk of records at a time (CHUNK_RECORDS): a bad image drops its whole chunk, and the
    record named is still the bad one, not the chunk's first; beyond a decode sample it is not decoded at all."""
    from dataset.record_scan import CHUNK_RECORDS

    root = tmp_path / "in"
    count = CHUNK_RECORDS + 200
    for i in range(count - 1):
        write(root, f"x/{i}.png", image_bytes("PNG", (8, 8), seed=i))
    write(root, "x/bad.png", corrupt_png(3))
    out = tmp_path / "data"
    header_only = ImageTransform(verify="header")
    convert_images(spark, ImageConvertOptions(str(root), str(out), splits=(("train", 1.0),), transform=header_only))
    names = [row["image/filename"] for row in inspect_examples(str(out), "train", count)]
    bad = names.index("x/bad.png")
    with pytest.raises(DatasetError) as caught:
        validate_dataset(str(out))
    assert bad % CHUNK_RECORDS and str(caught.value).startswith(
        f"cannot decode the image of record {bad} of train shard "
    )
    assert "(x/bad.png): Invalid PNG data, size " in str(caught.value)
    report = validate_dataset(str(out), decode_sample=bad)  # the records before it: every one of them decodes
    assert (report.num_records, report.num_decoded) == (count, bad)
