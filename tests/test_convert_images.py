"""The conversion job end to end on a real local Spark, read back with real TensorFlow."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from conversion.faults import FAULT_CONF
from conversion.images.convert import convert_images
from conversion.images.options import ImageConvertOptions, ImageTransform
from dataset.errors import ConversionError, StorageError
from dataset.versions import read_manifest
from tests.images import bomb_png, image_bytes, write

GOOD = {
    "cat/a.png": ("PNG", "RGB"),
    "cat/b gray.png": ("PNG", "L"),
    "cat/c-rgba.PNG": ("PNG", "RGBA"),
    "cat/nested/deeper/d.jpg": ("JPEG", "RGB"),
    "dog/Ünïcødé 狗.JPEG": ("JPEG", "RGB"),
    "dog/e.gif": ("GIF", "RGB"),
    "dog/f.bmp": ("BMP", "RGB"),
    "dog/sub/g.webp": ("WEBP", "RGB"),
    "dog/sub/h gray.jpg": ("JPEG", "L"),
}
BAD = {
    "cat/zero.png": "empty",
    "cat/text.jpg": "undecodable",
    "dog/truncated.jpg": "truncated",
    "dog/bomb.png": "decompression_bomb",
    "dog/dangling.jpg": "unreadable",
    "root.png": "outside_label_folder",
    ".hidden/x.png": "hidden",
    "cat/.secret.png": "hidden",
    "cat/readme.txt": "unsupported_extension",
}

TFDS_FILES = ["dataset_info.json", "features.json", "image.class.label.labels.txt"]  # dataset.tfds_metadata


def make_tree(root: Path, extra_per_label: int = 20) -> dict[str, bytes]:
    """Write GOOD, BAD and `extra_per_label` more PNGs per label; return relpath → bytes of the good ones."""
    good = {}
    for i, (relpath, (fmt, mode)) in enumerate(GOOD.items()):
        good[relpath] = write(root, relpath, image_bytes(fmt, (10 + i, 8 + i), mode, seed=i)).read_bytes()
    for label in ("cat", "dog"):
        for i in range(extra_per_label):
            relpath = f"{label}/many/{i:03d}.png"
            good[relpath] = write(
                root, relpath, image_bytes("PNG", (6, 6), seed=1000 + i + (label == "dog") * 500)
            ).read_bytes()
    jpeg = image_bytes("JPEG", (64, 64), seed=7)
    write(root, "cat/zero.png", b"")
    write(root, "cat/text.jpg", b"plain text pretending to be a JPEG\n")
    write(root, "dog/truncated.jpg", jpeg[: len(jpeg) // 2])
    write(root, "dog/bomb.png", bomb_png())
    os.symlink(root / "does-not-exist.jpg", root / "dog" / "dangling.jpg")
    for relpath in ("root.png", ".hidden/x.png", "cat/.secret.png"):
        write(root, relpath, image_bytes("PNG"))
    write(root, "cat/readme.txt", b"notes")
    return good


def read_records(data: Path) -> dict[str, dict]:
    """Every record of every split, parsed with the spec built from the manifest alone."""
    manifest = read_manifest(str(data))
    spec = manifest.tf_feature_spec()
    records = {}
    for split, info in manifest.splits.items():
        files = [str(data / f.path) for f in info.files]
        ds = tf.data.TFRecordDataset(files, compression_type="GZIP" if manifest.compression == "gzip" else "")
        for example in ds.batch(64).map(lambda b: tf.io.parse_example(b, spec)):
            for i in range(int(example["image/filename"].shape[0])):
                row = {k: v[i].numpy() for k, v in example.items()}
                name = row["image/filename"].decode("utf-8")
                assert name not in records, f"{name} written twice"
                records[name] = dict(row, split=split)
    return records


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("tree")
    return root, make_tree(root)


@pytest.fixture(scope="module")
def converted(spark, tree, tmp_path_factory):
    root, good = tree
    out = tmp_path_factory.mktemp("out") / "dataset"
    summary = convert_images(spark, ImageConvertOptions(str(root), str(out), num_shards=2, max_reject_fraction=0.5))
    return out, good, summary


def test_every_image_comes_back_with_identical_bytes_and_its_label(converted):
    out, good, _ = converted
    records = read_records(out)
    assert set(records) == set(good)
    labels = read_manifest(str(out)).labels
    assert labels == ("cat", "dog")
    for relpath, data in good.items():
        row = records[relpath]
        label = relpath.split("/")[0]
        if relpath.endswith(".webp"):  # training cannot decode WebP: stored as lossless PNG
            assert row["image/format"] == b"png"
            assert np.array_equal(
                tf.io.decode_png(row["image/encoded"]).numpy(), np.asarray(Image.open(io.BytesIO(data)))
            )
        else:
            assert row["image/encoded"] == data
        assert row["image/class/text"].decode() == label
        assert row["image/class/label"] == labels.index(label)
    gray = records["cat/b gray.png"]
    assert (gray["image/format"], gray["image/channels"], gray["image/width"], gray["image/height"]) == (
        b"png",
        1,
        11,
        9,
    )
    assert records["cat/c-rgba.PNG"]["image/channels"] == 4
    assert records["dog/Ünïcødé 狗.JPEG"]["image/format"] == b"jpeg"


def test_rejects_are_reported_with_reasons_and_counts_reconcile(converted):
    out, good, summary = converted
    report = [json.loads(line) for line in (out / "_rejected" / "rejected.jsonl").read_text().splitlines()]
    assert {r["path"]: r["reason"] for r in report} == BAD
    assert all(r["detail"] for r in report)
    manifest = read_manifest(str(out))
    assert manifest.num_files_seen == len(good) + len(BAD)
    assert manifest.num_records == len(good)
    assert manifest.num_rejected == {
        "decompression_bomb": 1,
        "empty": 1,
        "hidden": 2,
        "outside_label_folder": 1,
        "truncated": 1,
        "undecodable": 1,
        "unreadable": 1,
        "unsupported_extension": 1,
    }
    data = json.loads((out / "manifest.json").read_text())
    assert data["checks"] == {"num_files_seen": 58, "written": 49, "rejected": 9, "reconciled": True}
    assert summary.rejected == manifest.num_rejected


def run_folder(dataset: Path) -> Path:
    """The one run folder of a dataset written by one conversion."""
    (run,) = dataset.glob("run-*")
    return run


def test_layout_manifest_and_shards(converted):
    out, good, _ = converted
    manifest = read_manifest(str(out))
    shards = {split: min(2, info.num_records) for split, info in manifest.splits.items()}
    assert sorted(shards) == ["test", "train", "validation"] and shards["train"] == 2
    run = run_folder(out)
    assert sorted(p.name for p in out.iterdir()) == [
        "_SUCCESS",
        "_rejected",
        "_versions",
        *TFDS_FILES,
        "manifest.json",
        run.name,
    ]
    assert sorted(p.name for p in run.iterdir()) == ["_files.parquet", "_rejected"] + sorted(
        f"{split}-0000{i}-of-0000{n}.tfrecord{idx}"
        for split, n in shards.items()
        for i in range(n)
        for idx in ("", ".idx")
    )  # _files.parquet: the version's file index (dataset/file_index.py); .idx: each shard's record index
    assert [p.name for p in (out / "_versions").iterdir()] == ["00000001.json"]
    assert (out / "_versions" / "00000001.json").read_bytes() == (out / "manifest.json").read_bytes()
    assert (out / "_rejected" / "rejected.jsonl").read_bytes() == (run / "_rejected" / "rejected.jsonl").read_bytes()
    assert manifest.features["image/encoded"].dtype == "string"
    assert manifest.features["image/class/label"].spark_type == "bigint"
    for split, info in manifest.splits.items():
        assert [f.path for f in info.files] == [
            f"{run.name}/{split}-0000{i}-of-0000{shards[split]}.tfrecord" for i in range(shards[split])
        ]
        assert all(f.num_records > 0 and f.bytes == (out / f.path).stat().st_size for f in info.files)
        assert sum(info.label_counts.values()) == info.num_records


def test_rerun_gives_byte_identical_shards_and_added_files_keep_their_split(spark, tree, converted, tmp_path):
    root, good = tree
    out, _, _ = converted
    again = tmp_path / "again"
    convert_images(spark, ImageConvertOptions(str(root), str(again), num_shards=2, max_reject_fraction=0.5))
    shards = list(run_folder(out).glob("*.tfrecord"))
    assert len(shards) == 5  # validation holds one record
    for shard in shards:
        assert (run_folder(again) / shard.name).read_bytes() == shard.read_bytes()
    before = {name: row["split"] for name, row in read_records(out).items()}
    bigger = tmp_path / "bigger"
    for relpath, data in good.items():
        write(bigger, relpath, data)
    for i in range(30):
        write(bigger, f"dog/new/{i}.png", image_bytes("PNG", (5, 5), seed=5000 + i))
    grown = tmp_path / "grown"
    convert_images(spark, ImageConvertOptions(str(bigger), str(grown), num_shards=2))
    after = {name: row["split"] for name, row in read_records(grown).items()}
    assert len(after) == len(before) + 30
    assert all(after[name] == split for name, split in before.items())


def test_gzip_resize_reencode_fixed_labels_and_split_folders(spark, tmp_path):
    root = tmp_path / "in"
    for split in ("train", "test"):
        for label in ("a", "b", "c"):
            for i in range(3):
                write(root, f"{split}/{label}/{i}.png", image_bytes("PNG", (20, 30), "RGBA", seed=i))
    out = tmp_path / "out"
    options = ImageConvertOptions(
        str(root),
        str(out),
        split_from_folders=True,
        labels=("b", "a"),
        num_shards=2,
        compression="gzip",
        transform=ImageTransform(resize=(8, 12), reencode="jpeg"),
        max_reject_fraction=0.5,
    )
    summary = convert_images(spark, options)
    assert summary.records == {"train": 6, "test": 6}
    assert summary.rejected == {"unknown_label": 6}
    records = read_records(out)
    assert sorted(p.name for p in run_folder(out).glob("*.gz")) == [
        f"{s}-0000{i}-of-00002.tfrecord.gz" for s in ("test", "train") for i in range(2)
    ]
    for name, row in records.items():
        assert row["split"] == name.split("/")[0]
        assert row["image/class/text"].decode() == name.split("/")[1]
        assert (row["image/format"], row["image/height"], row["image/width"], row["image/channels"]) == (
            b"jpeg",
            8,
            12,
            3,
        )
        assert tf.io.decode_jpeg(row["image/encoded"]).shape == (8, 12, 3)
    assert read_manifest(str(out)).labels == ("b", "a")


def test_output_modes_and_bad_paths(spark, tree, converted, tmp_path):
    root, _ = tree
    out, _, _ = converted
    with pytest.raises(ConversionError, match="already exists; pass --mode overwrite"):
        convert_images(spark, ImageConvertOptions(str(root), str(out)))
    with pytest.raises(ConversionError, match="lies inside input"):
        convert_images(spark, ImageConvertOptions(str(root), str(root / "cat" / "out")))
    with pytest.raises(ConversionError, match="lies inside output"):  # overwrite would delete the input
        convert_images(spark, ImageConvertOptions(str(root / "cat"), str(root), mode="overwrite"))
    assert (root / "cat" / "a.png").exists()
    with pytest.raises(StorageError, match="does not exist or is not a folder"):
        convert_images(spark, ImageConvertOptions(str(tmp_path / "missing"), str(tmp_path / "o1")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConversionError, match="input folder is empty"):
        convert_images(spark, ImageConvertOptions(str(tmp_path / "empty"), str(tmp_path / "o2")))
    assert not (tmp_path / "o2").exists()
    small = tmp_path / "small"
    write(small, "x/1.png", image_bytes("PNG"))
    target = tmp_path / "target"
    write(target, "old-file", b"old")
    convert_images(spark, ImageConvertOptions(str(small), str(target), splits=(("train", 1.0),), mode="overwrite"))
    run = run_folder(target)  # a folder that held no dataset takes one beside the files it held: nothing deleted
    assert sorted(p.name for p in target.iterdir()) == [
        "_SUCCESS",
        "_rejected",
        "_versions",
        *TFDS_FILES,
        "manifest.json",
        "old-file",
        run.name,
    ]
    assert sorted(p.name for p in run.iterdir()) == [
        "_files.parquet",
        "_rejected",
        "train-00000-of-00001.tfrecord",
        "train-00000-of-00001.tfrecord.idx",
    ]


def test_too_many_rejects_fails_and_writes_only_the_report(spark, tree, tmp_path):
    root, _ = tree
    out = tmp_path / "strict"
    with pytest.raises(ConversionError, match=r"5 of 54 images rejected \(9.3%\) > --max-reject-fraction 0.05"):
        convert_images(spark, ImageConvertOptions(str(root), str(out), num_shards=2))
    run = run_folder(out)  # no version: only the refused run's report, where the message points
    assert [p.name for p in out.iterdir()] == [run.name]
    assert sorted(p.name for p in run.iterdir()) == ["_rejected"]
    assert len((run / "_rejected" / "rejected.jsonl").read_text().splitlines()) == len(BAD)


def test_a_task_failing_mid_write_is_retried_and_every_record_is_written_once(spark, tree, tmp_path):
    root, good = tree
    out = tmp_path / "retried"
    spark.conf.set(FAULT_CONF, "2")
    try:
        summary = convert_images(spark, ImageConvertOptions(str(root), str(out), num_shards=2, max_reject_fraction=0.5))
    finally:
        spark.conf.unset(FAULT_CONF)
    assert summary.retried_shards == 1
    records = read_records(out)  # raises if any record is there twice
    assert set(records) == set(good)
    assert not list(out.glob("*.tmp-*"))
