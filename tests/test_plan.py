"""Deterministic splits and shards, and option parsing."""

from __future__ import annotations

import pytest

from conversion.images.discovery import discover
from conversion.images.options import ImageConvertOptions, parse_size
from conversion.images.plan import plan_shards
from conversion.options import parse_splits
from conversion.splits import assign_split
from dataset.errors import ConversionError, OptionError
from dataset.fs import ListedFile

SPLITS = (("train", 0.8), ("validation", 0.1), ("test", 0.1))


def _files(n: int, labels=("a", "b", "c")) -> list[ListedFile]:
    return [ListedFile(f"{labels[i % len(labels)]}/img{i:05d}.png", 1000 + (i * 37) % 500) for i in range(n)]


def test_split_of_a_file_never_changes_when_files_are_added():
    before = {f.relpath: assign_split(f.relpath, SPLITS) for f in _files(2000)}
    after = {f.relpath: assign_split(f.relpath, SPLITS) for f in _files(5000)}
    assert all(after[path] == split for path, split in before.items())
    counts = {name: sum(1 for s in after.values() if s == name) for name, _ in SPLITS}
    assert 3850 <= counts["train"] <= 4150 and 400 <= counts["test"] <= 600


def test_shards_exactly_n_non_empty_balanced_and_deterministic():
    found = discover(_files(1000))
    options = ImageConvertOptions("in", "out", num_shards=7)
    plans = plan_shards(found.candidates, found.labels, options)
    assert plans == plan_shards(found.candidates, found.labels, options)
    for split in ("train", "validation", "test"):
        mine = [p for p in plans if p.split == split]
        assert [p.index for p in mine] == list(range(7))
        assert all(p.num_shards == 7 and p.files for p in mine)
        sizes = [sum(f.size for f in p.files) for p in mine]
        assert max(sizes) - min(sizes) <= 1500  # within one file's size
    assert plans[0].name == "test-00000-of-00007.tfrecord"
    assert all(assign_split(f.relpath, options.splits) == p.split for p in plans for f in p.files)
    paths = [f.relpath for p in plans for f in p.files]
    assert sorted(paths) == sorted(f.relpath for f in _files(1000))


def test_fewer_records_than_shards_gives_one_record_each():
    found = discover(_files(3))
    plans = plan_shards(
        found.candidates, found.labels, ImageConvertOptions("in", "out", splits=(("train", 1.0),), num_shards=8)
    )
    assert [(p.name, len(p.files)) for p in plans] == [(f"train-0000{i}-of-00003.tfrecord", 1) for i in range(3)]


def test_target_shard_size_sets_the_count_and_gzip_the_suffix():
    found = discover([ListedFile(f"a/{i}.png", 1024 * 1024) for i in range(10)])
    options = ImageConvertOptions("in", "out", splits=(("train", 1.0),), target_shard_mb=3, compression="gzip")
    plans = plan_shards(found.candidates, found.labels, options)
    assert [p.name for p in plans] == [f"train-0000{i}-of-00004.tfrecord.gz" for i in range(4)]


def test_discovery_labels_skips_and_fixed_label_list():
    files = [
        ListedFile(p, 1)
        for p in ["b/x.PNG", "a/deep/er/y.jpeg", "root.png", ".hidden/z.png", "a/.DS_Store", "a/notes.txt", "c/w.webp"]
    ]
    found = discover(files)
    assert found.labels == ("a", "b", "c")
    assert [(s.relpath, s.reason) for s in found.skipped] == [
        (".hidden/z.png", "hidden"),
        ("a/.DS_Store", "hidden"),
        ("a/notes.txt", "unsupported_extension"),
        ("root.png", "outside_label_folder"),
    ]
    fixed = discover(files, labels=("b", "a"))
    assert fixed.labels == ("b", "a")
    assert ("c/w.webp", "unknown_label") in [(s.relpath, s.reason) for s in fixed.skipped]
    with pytest.raises(ConversionError, match="input folder is empty"):
        discover([])


def test_option_errors_are_one_clear_line():
    with pytest.raises(OptionError, match="add up to 0.9, not 1"):
        parse_splits("train=0.8,test=0.1")
    with pytest.raises(OptionError, match="is not NAME=FRACTION"):
        parse_splits("train")
    with pytest.raises(OptionError, match="--resize must be HxW"):
        parse_size("224")
    assert parse_size("224x160") == (224, 160)
    with pytest.raises(OptionError, match="--compression must be one of none, gzip"):
        ImageConvertOptions("in", "out", compression="snappy")
    with pytest.raises(OptionError, match="--num-shards must be at least 1"):
        ImageConvertOptions("in", "out", num_shards=0)
