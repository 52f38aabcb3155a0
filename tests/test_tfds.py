"""TFDS metadata (`dataset.tfds_metadata`): `tfds.builder_from_directory` over what conversions write gives the
manifest's counts, label names and records; appends, compaction, old datasets and gzip datasets."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import re
import shutil
from pathlib import Path

import pytest

from conversion.compact import CompactOptions, compact, plan_groups
from conversion.images.convert import convert_images
from conversion.images.options import ImageConvertOptions
from dataset.errors import DatasetError
from dataset.manifest import Manifest, ShardFile, SplitInfo, image_features
from dataset.publishing import rollback
from dataset.tfds_metadata import DATASET_INFO, FEATURES, render_features, shard_template, tfds_directory
from dataset.versions import read_manifest, read_version
from jobs import convert_table
from jobs import versions as versions_job
from tests.example_reader import file_records, parse_example
from tests.images import image_bytes, write

IMAGE_KEYS = ("image/encoded", "image/class/label", "image/filename")


def manifest_rows(folder: Path | str, split: str, keys: tuple[str, ...], version: int | None = None) -> list[tuple]:
    """A split's records in manifest order through the test reader: each key's values as a tuple."""
    manifest = read_manifest(str(folder), version)
    rows = []
    for shard in manifest.split(split).files:
        for record in file_records(Path(folder) / shard.path):
            example = parse_example(record)
            rows.append(tuple(tuple(example.get(key, [])) for key in keys))
    return rows


def tfds_rows(builder, split: str, keys: tuple[str, ...]) -> list[tuple]:
    """A split's records as TFDS gives them (image bytes undecoded), each key's values as a tuple."""
    import numpy as np
    import tensorflow_datasets as tfds

    decoders = {"image/encoded": tfds.decode.SkipDecoding()} if "image/encoded" in keys else None
    rows = []
    for example in tfds.as_numpy(builder.as_dataset(split=split, decoders=decoders)):
        rows.append(tuple(tuple(np.atleast_1d(example[key]).tolist()) for key in keys))
    return rows


def tfds_files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and (p.name in (DATASET_INFO, FEATURES) or p.name.endswith(".labels.txt"))
    }


def shard_bytes(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*.tfrecord")
    }


@pytest.mark.needs_tf
def test_builder_from_directory_reads_an_image_dataset_as_its_manifest(tiny_images):
    import tensorflow_datasets as tfds

    version = read_version(tiny_images)
    manifest, run = version.manifest, version.info.run
    builder = tfds.builder_from_directory(tiny_images)
    assert str(builder.info.version) == "1.0.0" and builder.info.disable_shuffling
    assert builder.info.features["image/class/label"].names == list(manifest.labels) == ["a", "b"]
    assert {name: s.num_examples for name, s in builder.info.splits.items()} == {"empty": 0, "test": 8, "train": 24}
    info = json.loads((Path(tiny_images) / DATASET_INFO).read_text())
    assert [(s["name"], s["filepathTemplate"], s["shardLengths"]) for s in info["splits"]] == [
        ("empty", f"{run}/empty-{{SHARD_X_OF_Y}}.tfrecord", ["0"]),
        ("test", f"{run}/test-{{SHARD_X_OF_Y}}.tfrecord", ["8"]),
        ("train", f"{run}/train-{{SHARD_X_OF_Y}}.tfrecord", ["24"]),
    ]
    assert (Path(tiny_images) / "image.class.label.labels.txt").read_text() == "a\nb\n"
    for split in ("train", "test"):
        rows = manifest_rows(tiny_images, split, IMAGE_KEYS)
        assert len(rows) == manifest.splits[split].num_records
        assert tfds_rows(builder, split, IMAGE_KEYS) == rows  # same bytes, labels, names, in manifest order
    assert tfds_directory(tiny_images) == tiny_images


TABLE_CSV = "id,x,name,age,label\n" + "".join(
    f"{i},{i * 0.25},n{i},{'' if i % 3 == 0 else i + 20},{i % 3}\n" for i in range(15)
)
TABLE_KEYS = ("id", "x", "name", "age", "label")


@pytest.fixture(scope="module")
def table(spark, tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("tfds-table")
    (tmp / "rows.csv").write_text(TABLE_CSV)
    out = tmp / "table"
    argv = ["--input", str(tmp / "rows.csv"), "--output", str(out), "--label", "label", "--key", "id"]
    assert convert_table.main([*argv, "--num-shards", "2", "--quiet"]) == 0
    return out


@pytest.mark.needs_tf
def test_builder_from_directory_reads_a_table_dataset_with_a_class_label_and_nulls(table):
    import tensorflow_datasets as tfds

    manifest = read_manifest(str(table))
    builder = tfds.builder_from_directory(str(table))
    features = builder.info.features
    assert builder.info.features["label"].names == list(manifest.labels) == ["0", "1", "2"]
    assert {name: type(features[name]).__name__ for name in TABLE_KEYS} == {
        "id": "Scalar",
        "x": "Scalar",
        "name": "Text",
        "age": "Tensor",  # 5 of 15 records leave it out: a list, empty there
        "label": "ClassLabel",
    }
    assert manifest.features["age"].null_count == 5 and features["age"].shape == (None,)
    assert {name: s.num_examples for name, s in builder.info.splits.items()} == {
        name: s.num_records for name, s in manifest.splits.items()
    }
    seen = 0
    for split in manifest.splits:
        rows = tfds_rows(builder, split, TABLE_KEYS)
        assert rows == manifest_rows(table, split, TABLE_KEYS)  # a value left out reads as ()
        seen += len(rows)
    assert seen == 15


def test_a_text_label_keeps_its_type_and_a_label_that_is_not_its_id_is_no_class_label(table):
    manifest = read_manifest(str(table))
    as_text = dataclasses.replace(
        manifest,
        features={**manifest.features, "label": dataclasses.replace(manifest.features["label"], dtype="string")},
    )
    features, labels = render_features(as_text)
    assert features["featuresDict"]["features"]["label"]["pythonClassName"].endswith("text_feature.Text")
    assert labels == {}
    shifted = dataclasses.replace(manifest, labels=("1", "2", "3"))  # record value 1 would be id 0: no ClassLabel
    assert render_features(shifted)[1] == {}
    assert render_features(manifest)[1] == {"label.labels.txt": b"0\n1\n2\n"}


def png(seed: int) -> bytes:
    return image_bytes("PNG", (8, 8), seed=seed)


@dataclasses.dataclass(frozen=True)
class Appended:
    out: Path
    note: str  # what the append printed to stderr


@pytest.fixture(scope="module")
def appended(spark, tmp_path_factory) -> Appended:
    """Version 1: 8 images of cat and dog; version 2: an append of 4 more (a new label), in a run folder of its own."""
    tmp = tmp_path_factory.mktemp("tfds-append")
    root, out = tmp / "tree", tmp / "ds"
    for label in ("cat", "dog"):
        for i in range(4):
            write(root, f"{label}/{i}.png", png(10 * len(label) + i))
    options = ImageConvertOptions(str(root), str(out), splits=(("train", 0.7), ("test", 0.3)), num_shards=2)
    convert_images(spark, dataclasses.replace(options, mode="append"))
    assert (out / DATASET_INFO).is_file()
    for name, seed in (("cat/8.png", 50), ("zebra/0.png", 52), ("zebra/1.png", 53), ("dog/9.png", 54)):
        write(root, name, png(seed))
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        convert_images(spark, dataclasses.replace(options, mode="append"))
    return Appended(out, err.getvalue())


def run_folders(out: Path) -> list[str]:
    """The run folders of the version's shards in manifest order (oldest run first), as the tool names them: two
    runs in the same second may sort the other way by name."""
    manifest = read_manifest(str(out))
    return list(dict.fromkeys(f.path.split("/")[0] for _, s in sorted(manifest.splits.items()) for f in s.files))


def spans_line(out: Path, number: int) -> str:
    manifest = read_manifest(str(out))
    spans = []
    for split, info in sorted(manifest.splits.items()):
        folders = list(dict.fromkeys(f.path.split("/")[0] for f in info.files))
        if len(folders) > 1:
            spans.append(f"split {split!r} spans run folders {', '.join(folders)}")
    urls = [f"{out}/{run}" for run in run_folders(out)]
    return (
        f"version {number} of {out}: {'; '.join(spans)}; TFDS needs one file template per split: run "
        f"`python jobs/compact.py --data {out} --whole-splits` (then the root metadata is written) or read with "
        f"tfds.builder_from_directories({urls!r})"
    )


@pytest.mark.needs_tf
def test_an_append_gets_metadata_per_run_folder_and_one_line_for_the_root(appended, tmp_path, capsys):
    import tensorflow_datasets as tfds

    out = tmp_path / "ds"
    shutil.copytree(appended.out, out)
    v2 = read_version(str(out))
    assert v2.number == 2 and len(run_folders(out)) == 2
    line = spans_line(out, 2).replace(str(out), str(appended.out))
    assert f"split 'train' spans run folders {', '.join(run_folders(out))};" in line
    assert appended.note == f"tfds: {line}\n"
    assert not (out / DATASET_INFO).exists() and not (out / FEATURES).exists()  # no root metadata of version 1
    assert not list(out.glob("*.labels.txt"))
    with pytest.raises(DatasetError, match="^" + re.escape(spans_line(out, 2)) + "$"):
        tfds_directory(str(out))
    assert versions_job.main(["--data", str(out), "--tfds"]) == 2
    assert capsys.readouterr().err == f"error: {spans_line(out, 2)}\n"

    token = v2.info.run.rsplit("-", 1)[1]
    info = json.loads((out / v2.info.run / DATASET_INFO).read_text())
    assert [(s["name"], s["filepathTemplate"]) for s in info["splits"]] == [
        (split, f"{split}-{{SHARD_X_OF_Y}}-{token}.tfrecord")
        for split in sorted(v2.manifest.splits)
        if any(f.path.startswith(v2.info.run) for f in v2.manifest.splits[split].files)
    ]
    assert info["version"] == "2.0.0" and (out / v2.info.run / "image.class.label.labels.txt").read_text() == (
        "cat\ndog\nzebra\n"
    )
    builder = tfds.builder_from_directories([str(out / run) for run in run_folders(out)])
    assert builder.info.features["image/class/label"].names == list(v2.manifest.labels) == ["cat", "dog", "zebra"]
    for split, info in v2.manifest.splits.items():
        assert builder.info.splits[split].num_examples == info.num_records
        assert tfds_rows(builder, split, IMAGE_KEYS) == manifest_rows(out, split, IMAGE_KEYS)

    # compaction into one run folder per split: the root describes the version again, per-run metadata goes
    summary = compact(str(out), CompactOptions(target_shard_mb=1.0, whole_splits=True))
    assert summary.version == 3 and run_folders(out) == [summary.run]
    assert capsys.readouterr().err == ""
    assert [p.parent.name for p in out.rglob(DATASET_INFO)] == [out.name]
    builder = tfds.builder_from_directory(str(out))
    assert str(builder.info.version) == "3.0.0"
    for split in v2.manifest.splits:
        assert tfds_rows(builder, split, IMAGE_KEYS) == manifest_rows(out, split, IMAGE_KEYS, 2)

    # a rollback to version 1 (one run folder): the root describes version 4, whose content is version 1's
    rollback(str(out), 1)
    builder = tfds.builder_from_directory(str(out))
    assert str(builder.info.version) == "4.0.0"
    assert builder.info.features["image/class/label"].names == ["cat", "dog"]
    assert tfds_rows(builder, "train", IMAGE_KEYS) == manifest_rows(out, "train", IMAGE_KEYS, 1)


@pytest.mark.needs_tf
def test_tfds_flag_writes_the_metadata_of_an_old_dataset_and_rewrites_no_shard(tiny_images, tmp_path, capsys):
    import tensorflow_datasets as tfds

    old = tmp_path / "old"
    shutil.copytree(tiny_images, old)
    written = tfds_files(old)
    assert sorted(written) == [DATASET_INFO, FEATURES, "image.class.label.labels.txt"]
    for name in written:  # as this project wrote datasets before TFDS metadata
        (old / name).unlink()
    shards = shard_bytes(old)
    with pytest.raises(
        DatasetError, match=r"has no TFDS metadata of its version 1; write it with `python jobs/versions.py"
    ):
        tfds_directory(str(old))
    (old / DATASET_INFO).write_text('{"name": "tfrecordpipe_ima')  # cut short, or edited by hand: the same line
    with pytest.raises(DatasetError, match=r"has no TFDS metadata of its version 1; write it with"):
        tfds_directory(str(old))
    (old / DATASET_INFO).unlink()
    assert versions_job.main(["--data", str(old), "--tfds"]) == 0
    assert capsys.readouterr().out == (
        f"version 1 of {old}: TFDS metadata written; tfds.builder_from_directory({str(old)!r})\n"
    )
    assert tfds_files(old) == written  # what the conversion wrote, byte for byte
    assert shard_bytes(old) == shards and read_version(str(old)).number == 1  # no shard rewritten, no version
    builder = tfds.builder_from_directory(str(old))
    assert tfds_rows(builder, "test", IMAGE_KEYS) == manifest_rows(old, "test", IMAGE_KEYS)


def test_a_gzip_dataset_gets_no_metadata_and_one_line(spark, tmp_path, capsys):
    root, out = tmp_path / "tree", tmp_path / "gz"
    for i in range(4):
        write(root, f"{'ab'[i % 2]}/{i}.png", png(i))
    capsys.readouterr()
    convert_images(spark, ImageConvertOptions(str(root), str(out), num_shards=1, compression="gzip"))
    line = (
        f"version 1 of {out}: no TFDS metadata: its shards are gzip and TFDS reads only uncompressed TFRecord "
        "files; convert again with --compression none"
    )
    assert capsys.readouterr().err.splitlines() == [f"tfds: {line}"]
    assert tfds_files(out) == {}
    assert versions_job.main(["--data", str(out), "--tfds"]) == 2
    assert capsys.readouterr().err == f"error: {line}\n"
    with pytest.raises(DatasetError, match="^" + re.escape(line) + "$"):
        tfds_directory(str(out))


def test_a_template_is_found_only_where_tfds_generates_exactly_the_names():
    assert shard_template(["train-00000-of-00002.tfrecord", "train-00001-of-00002.tfrecord"]) == (
        "train-{SHARD_X_OF_Y}.tfrecord"
    )
    assert shard_template(["train-00000-of-00001-b1b2.tfrecord"]) == "train-{SHARD_X_OF_Y}-b1b2.tfrecord"
    assert shard_template(["train-00000-of-00003.tfrecord", "train-00002-of-00003.tfrecord"]) is None  # a gap
    assert shard_template(["train-00001-of-00002.tfrecord", "train-00000-of-00002.tfrecord"]) is None  # out of order
    assert shard_template(["rewritten-1f2e-00001-train-00000-of-00002.tfrecord"]) is None  # 1 file named "of 2"
    assert shard_template(["part-0.tfrecord"]) is None


def test_whole_splits_regroups_every_shard_of_a_split_that_spans_folders():
    kb = 1024
    a = tuple(ShardFile(f"run-a/train-{i:05d}-of-00002.tfrecord", 3, 900 * kb) for i in range(2))
    b = (ShardFile("run-b/train-00000-of-00001-b1b2.tfrecord", 2, 100 * kb),)
    one = (ShardFile("run-a/test-00000-of-00001.tfrecord", 1, 900 * kb),)
    manifest = Manifest(
        "images", "", "", {}, ("x",), image_features(), {"train": SplitInfo(8, a + b), "test": SplitInfo(1, one)},
        "none", 9, {}, "", None,
    )  # fmt: skip
    options = CompactOptions(target_shard_mb=1.0, min_shard_mb=0.5)
    assert plan_groups(manifest, options) == []  # large shards stay where they are: train still spans two folders
    groups = plan_groups(manifest, dataclasses.replace(options, whole_splits=True))
    assert [(g.split, g.name, [f.path for f in g.shards]) for g in groups] == [
        ("train", "train-00000-of-00002.tfrecord", [a[0].path]),
        ("train", "train-00001-of-00002.tfrecord", [a[1].path, b[0].path]),
    ]  # test lies in one folder under one template: left as it is
