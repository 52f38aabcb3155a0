"""Compaction (conversion/compact.py, jobs/compact.py) and what it leaves for vacuum, on versions made of several
run folders; and the local copies that validate and training make of such versions (shards with the same file
name in two run folders), on local disk and on S3Proxy."""

from __future__ import annotations

import gzip
import hashlib
import re
import zlib
from collections import Counter
from pathlib import Path

import pytest

from conversion.compact import CompactOptions, compact, compact_version, plan_groups
from conversion.example_proto import encode_example
from conversion.publish import RunFolder
from dataset.check import validate_dataset
from dataset.errors import DatasetError, OptionError
from dataset.features import (
    IMAGE_CHANNELS,
    IMAGE_ENCODED,
    IMAGE_FILENAME,
    IMAGE_FORMAT,
    IMAGE_HEIGHT,
    IMAGE_LABEL_ID,
    IMAGE_LABEL_TEXT,
    IMAGE_SHA256,
    IMAGE_WIDTH,
)
from dataset.file_index import FileIndex, merge, read_index, write_index
from dataset.fs import filesystem
from dataset.layout import DatasetFolder, shard_file_name
from dataset.manifest import IMAGE_KEY_FEATURE, IMAGE_LABEL_FEATURE, Manifest, ShardFile, SplitInfo, image_features
from dataset.publishing import publish_current
from dataset.publishing import rollback as rollback_to
from dataset.tfrecord import TFRecordFileWriter
from dataset.vacuum import plan_vacuum
from dataset.versions import CommitConflict, Version, commit_version, committed_numbers, read_version
from jobs import compact as compact_job
from jobs import versions as versions_job
from tests.example_reader import index_lines, tfrecords
from tests.images import image_bytes
from tests.s3server import s3_bucket_fixture

LABELS = ("cat", "dog")
KB = 1024


def record(seed: int, broken: bool = False) -> tuple[bytes, str]:
    """An image record (a 6x5 PNG, or bytes no decoder reads) and its label."""
    label = seed % 2
    encoded = b"not an image" * 4 if broken else image_bytes("PNG", (6, 5), seed=seed)
    values = {
        IMAGE_ENCODED: encoded,
        IMAGE_FORMAT: "png",
        IMAGE_HEIGHT: 5,
        IMAGE_WIDTH: 6,
        IMAGE_CHANNELS: 3,
        IMAGE_LABEL_ID: label,
        IMAGE_LABEL_TEXT: LABELS[label],
        IMAGE_FILENAME: f"{LABELS[label]}/{seed}.png",
        IMAGE_SHA256: hashlib.sha256(encoded).hexdigest(),
    }
    return encode_example(values), LABELS[label]


REPORT = '{"path": "cat/x.png", "reason": "undecodable"}\n'


def commit_run(
    url: str, shards: dict[str, list[list[int]]], compression: str = "none", broken: int = -1, report: str = ""
) -> Version:
    """A run that writes `shards` (split → shards → record seeds) into a run folder of its own and commits the
    parent's shards plus these as the next version (an append by hand; version 1 when the folder is new)."""
    run = RunFolder(url)
    run.begin("append")
    parent = run.parent
    splits = dict(parent.manifest.splits) if parent else {}
    seen = parent.manifest.num_files_seen if parent else 0
    rows: dict[str, list[str]] = {"relpaths": [], "splits": [], "shards": []}  # the file index: where each file went
    for split, seeds_per_shard in shards.items():
        old = splits.get(split, SplitInfo(0, (), {label: 0 for label in LABELS}))
        files, counts = list(old.files), Counter(old.label_counts)
        for index, seeds in enumerate(seeds_per_shard):
            name = shard_file_name(split, index, len(seeds_per_shard), compression)
            with TFRecordFileWriter(run.fs.open(f"{run.path}/{name}", "wb"), compression) as out:
                for seed in seeds:
                    data, label = record(seed, seed == broken)
                    out.write(data)
                    counts[label] += 1
                    rows["relpaths"].append(f"{label}/{seed}.png")
                    rows["splits"].append(split)
                    rows["shards"].append(f"{run.run}/{name}")
            files.append(ShardFile(f"{run.run}/{name}", len(seeds), int(run.fs.size(f"{run.path}/{name}"))))
            seen += len(seeds)
        splits[split] = SplitInfo(old.num_records + sum(map(len, seeds_per_shard)), tuple(files), dict(counts))
    index = FileIndex.of(rows["relpaths"], [100] * len(rows["relpaths"]), splits=rows["splits"], shards=rows["shards"])
    if parent:
        index = merge(read_index(url, parent.manifest), index)
    manifest = Manifest(
        file_index=write_index(url, run.run, index),
        kind="images",
        created_at="2026-12-06T00:00:00+00:00",
        source_root="/photos",
        options={},
        labels=LABELS,
        features=image_features(),
        splits=dict(sorted(splits.items())),
        compression=compression,
        num_files_seen=seen,
        num_rejected={},
        label_feature=IMAGE_LABEL_FEATURE,
        key_feature=IMAGE_KEY_FEATURE,
    )
    if report:
        run.write_text("_rejected/rejected.jsonl", report)
    version = commit_version(url, manifest, "append" if parent else "convert", parent, run.run)
    publish_current(DatasetFolder(url), run.run)
    return version


def split_records(url: str, version: int | None = None) -> dict[str, list[bytes]]:
    """Every record of every split of a version, in manifest order, read frame by frame (an independent reader)."""
    manifest = read_version(url, version).manifest
    folder = DatasetFolder(url)
    out = {}
    for split, info in manifest.splits.items():
        out[split] = []
        for shard in info.files:
            data = folder.fs.cat_file(folder.path(shard.path))
            out[split] += tfrecords(gzip.decompress(data) if manifest.compression == "gzip" else data)
    return out


def _plain(folder: DatasetFolder, path: str, compression: str) -> bytes:
    data = Path(folder.path(path)).read_bytes()
    return gzip.decompress(data) if compression == "gzip" else data


def history(url: str, compression: str = "none") -> None:
    """Version 1: two big train shards and a small test shard; versions 2-5: appends of small shards.

    Small shards: train 8 (1-2 records each), test 5 (1 record each): 13 in 2 splits, file names repeated across run
    folders (every append writes train-00000-of-00002...).
    """
    commit_run(url, {"train": [list(range(0, 10)), list(range(10, 20))], "test": [[20]]}, compression)
    seed = 100
    for n in range(4):  # versions 3-5 rejected files (a report each)
        commit_run(url, {"train": [[seed, seed + 1], [seed + 2]], "test": [[seed + 3]]}, compression, report=REPORT * n)
        seed += 10


# stored bytes: a record is about 485 (its frame and gzip add little), a big shard of 10 records 4.8 KB; small
# shards (1 or 2 records) are under the minimum (1.2 KB); groups: test 5 shards -> 1, train 4 + 4 -> 2 (3 KB at most)
OPTIONS = CompactOptions(target_shard_mb=3 / KB, min_shard_mb=1.2 / KB)
FLAGS = ["--target-shard-mb", str(3 / KB), "--min-shard-mb", str(1.2 / KB)]


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_compaction_joins_small_shards_with_every_record_unchanged_and_keeps_the_history(tmp_path, compression):
    url = str(tmp_path / "ds")
    history(url, compression)
    before = read_version(url)
    records = split_records(url)
    small = {f.path for split in before.manifest.splits.values() for f in split.files if f.bytes < OPTIONS.min_bytes}
    big = {f.path for split in before.manifest.splits.values() for f in split.files} - small
    assert len(small) == 13 and len(big) == 2  # test's first shard is small too

    summary = compact(url, OPTIONS)
    after = read_version(url)
    assert (summary.parent, summary.version, after.number) == (5, 6, 6)
    assert after.info.operation == "compact" and after.info.parent == 5 and after.info.run == summary.run
    assert split_records(url) == records  # same bytes, same order, per split
    # big shards stay under their names; every small shard went into exactly one new shard in the run folder
    listed = {f.path for split in after.manifest.splits.values() for f in split.files}
    assert big <= listed and not small & listed
    assert set(after.info.removed) == small
    new = [f for split in after.manifest.splits.values() for f in split.files if f.path not in big]
    assert {f.path.split("/")[0] for f in new} == {summary.run}
    assert summary.shards_read == 13 and summary.shards_written == len(new) == 3
    assert all(f.bytes <= OPTIONS.target_bytes for f in new)
    for split, info in after.manifest.splits.items():  # shard naming of the layout, numbered per split
        names = [f.path.split("/")[1] for f in info.files if f.path.split("/")[0] == summary.run]
        assert names == [shard_file_name(split, i, len(names), compression) for i in range(len(names))]
    folder = DatasetFolder(url)
    for f in new:
        data = Path(folder.path(f.path)).read_bytes()
        assert len(data) == f.bytes
        # its record index, from the frames copied (gzip shards have none)
        assert f.index == (f"{f.path}.idx" if compression == "none" else None)
        if f.index:
            assert Path(folder.path(f.index)).read_text() == index_lines(data)
        if compression == "gzip":  # one gzip stream, not members glued together
            stream = zlib.decompressobj(31)
            assert len(tfrecords(stream.decompress(data))) == f.num_records and stream.unused_data == b""
    # the file index: a copy in the run folder, each file's shard the one that holds its record now
    holder = {}  # old shard -> new shard, from the records themselves
    for split, info in after.manifest.splits.items():
        new_of = {r: f.path for f in info.files for r in tfrecords(_plain(folder, f.path, compression))}
        for f in before.manifest.splits[split].files:
            holder[f.path] = new_of[tfrecords(_plain(folder, f.path, compression))[0]]
    assert after.manifest.file_index == f"{summary.run}/_files.parquet"
    rows_before = read_index(url, before.manifest).table.to_pylist()
    assert read_index(url, after.manifest).table.to_pylist() == [
        dict(row, shard=holder[row["shard"]]) for row in rows_before
    ]
    assert len(rows_before) == 37 and {r["shard"] for r in rows_before} == small | big
    # counts, labels, statistics unchanged; the manifest reconciles; the root manifest follows
    assert {k: (v.num_records, v.label_counts) for k, v in after.manifest.splits.items()} == {
        k: (v.num_records, v.label_counts) for k, v in before.manifest.splits.items()
    }
    assert after.manifest.num_files_seen == before.manifest.num_files_seen
    assert Manifest.from_json(Path(url, "manifest.json").read_text()) == after.manifest
    # the rejected report stays the parent's, at the root and in the run folder (where a rollback finds it)
    assert Path(url, "_rejected/rejected.jsonl").read_text() == REPORT * 3
    assert Path(url, summary.run, "_rejected/rejected.jsonl").read_text() == REPORT * 3
    assert validate_dataset(url).records_per_split == {"test": 5, "train": 32}  # every image decodes too
    # the old version still reads; a rollback undoes the compaction
    assert split_records(url, 5) == records
    assert validate_dataset(url, decode_sample=0, version=5).num_shards == 15
    rollback_to(url, 5)
    assert read_version(url).manifest.splits == before.manifest.splits and split_records(url) == records


def test_nothing_to_compact_commits_nothing(tmp_path, capsys):
    url = str(tmp_path / "ds")
    history(url)
    assert compact_job.main(["--data", url, *FLAGS]) == 0
    out = capsys.readouterr().out
    assert out.startswith(
        f"compacted version 5 of {url} into version 6: shards test 5 -> 1, train 10 -> 4; 13 shards ("
    )
    runs = sorted(p.name for p in Path(url).glob("run-*"))
    assert compact_job.main(["--data", url, *FLAGS]) == 0
    assert capsys.readouterr().out == (
        f"nothing to compact in version 6 of {url}: no two small shards side by side in a split\n"
    )
    assert committed_numbers(DatasetFolder(url)) == [1, 2, 3, 4, 5, 6]
    assert sorted(p.name for p in Path(url).glob("run-*")) == runs
    # one split only; --version must be the current one
    assert compact(str(tmp_path / "ds"), CompactOptions(1.0, splits=("test",))).version is None
    assert compact_job.main(["--data", url, "--version", "5"]) == 2
    assert capsys.readouterr().err == (
        f"error: version 5 of {url} is not the current one (6); a compaction builds on the current version: "
        "roll back to 5 first or leave --version out\n"
    )
    assert compact_job.main(["--data", url, "--split", "valid"]) == 2
    assert capsys.readouterr().err == "error: split 'valid' is not in the dataset; it has test, train\n"
    with pytest.raises(OptionError, match="--min-shard-mb must be above 0 and at most --target-shard-mb 1.0, got 2"):
        CompactOptions(1.0, 2.0)


def test_grouping_is_consecutive_small_shards_up_to_the_target_in_manifest_order():
    sizes = [300, 300, 300, 900, 200, 200, 100, 700, 400, 400]  # KB; min 500, target 700
    files = tuple(ShardFile(f"run-x/train-{i:05d}-of-00010.tfrecord", 1, n * KB) for i, n in enumerate(sizes))
    manifest = Manifest(
        "images", "", "", {}, LABELS, image_features(), {"train": SplitInfo(10, files)}, "none", 10, {}, "", None
    )
    groups = plan_groups(manifest, CompactOptions(target_shard_mb=700 / KB, min_shard_mb=500 / KB))
    # 2 stays alone (900 > 700), 3 and 7 are not small, 8 and 9 do not fit together: they stay as they are
    assert [[int(f.path[12:17]) for f in g.shards] for g in groups] == [[0, 1], [4, 5, 6]]
    assert [g.name for g in groups] == ["train-00000-of-00002.tfrecord", "train-00001-of-00002.tfrecord"]


def test_a_corrupt_shard_or_a_concurrent_commit_commits_nothing_and_leaves_no_run_folder(tmp_path):
    url = str(tmp_path / "ds")
    history(url)
    parent = read_version(url)
    runs = sorted(p.name for p in Path(url).glob("run-*"))
    victim = next(f for f in parent.manifest.splits["train"].files if f.num_records == 2)
    path = Path(url, victim.path)
    good = path.read_bytes()
    path.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    with pytest.raises(DatasetError, match=r"is corrupt at byte \d+: the record CRC does not match"):
        compact(url, OPTIONS)
    path.write_bytes(good)
    assert sorted(p.name for p in Path(url).glob("run-*")) == runs and read_version(url).number == 5
    gz = tmp_path / "gz"  # a gzip shard cut short
    history(str(gz), "gzip")
    shard = Path(gz, read_version(str(gz)).manifest.splits["test"].files[1].path)
    shard.write_bytes(shard.read_bytes()[:-10])
    with pytest.raises(
        DatasetError, match=f"shard file://{re.escape(str(shard))} is not valid gzip data .*; nothing was"
    ):
        compact(str(gz), OPTIONS)
    assert read_version(str(gz)).number == 5 and len(list(gz.glob("run-*"))) == 5
    rollback_to(url, 4)  # another writer commits version 6 after this compaction read version 5
    with pytest.raises(CommitConflict, match=re.escape(f"another run committed version 6 of {url} while this one ran")):
        compact_version(url, parent, OPTIONS)
    assert sorted(p.name for p in Path(url).glob("run-*")) == runs and read_version(url).number == 6


def test_vacuum_after_compaction_deletes_exactly_the_old_small_shards(tmp_path, capsys):
    url = str(tmp_path / "ds")
    history(url)
    summary = compact(url, OPTIONS)
    current = read_version(url)
    replaced = set(current.info.removed)
    indexes = {read_version(url, n).manifest.file_index for n in range(1, 6)}
    first_run = read_version(url, 1).info.run  # its big shards stay listed
    assert len(indexes) == 5 and current.manifest.file_index not in indexes
    # a killed run's leftovers (task plans, an attempt) and a committed run's forgotten task plan
    dead = Path(url, "run-20260101T000000Z-deadbeef")
    (dead / "_plan").mkdir(parents=True)
    (dead / "_plan" / "task-00000.arrow").write_bytes(b"p" * 10)
    (dead / "train-00000-of-00001.tfrecord.tmp-1").write_bytes(b"s" * 20)
    Path(url, summary.run, "_plan").mkdir()
    Path(url, summary.run, "_plan", "task-00001.arrow").write_bytes(b"q" * 30)

    plan = plan_vacuum(url, keep=1, min_age_s=0)
    shards = {f.path for f in plan.files if ".tfrecord" in f.path and "deadbeef" not in f.path}
    assert shards == replaced and len(replaced) == 13
    listed = {f.path for split in current.manifest.splits.values() for f in split.files}
    assert not listed & {f.path for f in plan.files}
    assert {f.path for f in plan.files} - replaced == {
        *(f"_versions/{n:08d}.json" for n in range(1, 6)),
        *indexes,  # each older version's file index, also in version 1's run folder (its big shards stay)
        # the reports of versions 3-5 in their run folders (the root's, version 5's, was copied by the compaction)
        *(f"{read_version(url, n).info.run}/_rejected/rejected.jsonl" for n in (3, 4, 5)),
        f"{dead.name}/_plan/task-00000.arrow",
        f"{dead.name}/train-00000-of-00001.tfrecord.tmp-1",
        f"{summary.run}/_plan/task-00001.arrow",
    }
    leftovers = {f"{dead.name}/_plan/task-00000.arrow", f"{dead.name}/train-00000-of-00001.tfrecord.tmp-1"}
    leftovers.add(f"{summary.run}/_plan/task-00001.arrow")
    # with the default minimum age the fresh leftovers stay (a writer may be running); the replaced shards go anyway
    assert {f.path for f in plan_vacuum(url, keep=1).files} == {f.path for f in plan.files} - leftovers
    on_disk = sum(Path(url, f.path).stat().st_size for f in plan.files)
    assert plan.bytes == on_disk
    assert versions_job.main(["--data", url, "--vacuum", "--keep", "1", "--min-age-hours", "0"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last == (
        f"would delete {len(plan.files)} files, {on_disk} bytes, from {url}; versions kept: 6 "
        "(dry run: pass --yes to delete)"
    )
    assert all(Path(url, f.path).exists() for f in plan.files)  # a dry run deletes nothing
    assert versions_job.main(["--data", url, "--vacuum", "--keep", "1", "--min-age-hours", "0", "--yes"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith(f"deleted {len(plan.files)} files, {on_disk} bytes")
    assert not any(Path(url, f.path).exists() for f in plan.files) and not dead.exists()
    assert sorted(p.name for p in Path(url).glob("run-*")) == sorted({first_run, summary.run})  # emptied ones go
    assert validate_dataset(url, decode_sample=0).num_records == 37
    assert Path(url, "_rejected/rejected.jsonl").read_text() == REPORT * 3
    assert plan_vacuum(url, keep=1, min_age_s=0).files == ()


def test_local_copies_keep_each_shards_path_in_the_dataset_on_the_store(s3, store):
    """A version whose shards have the same file names in two run folders: validate and training's copies (S3)."""
    url = f"s3://{s3.bucket}/two-runs"
    commit_run(url, {"train": [[0, 1], [2, 3, 4]]})
    commit_run(url, {"train": [[10], [11, 12]]}, broken=11)
    manifest = read_version(url).manifest
    paths = [f.path for f in manifest.splits["train"].files]
    assert len({p.split("/")[1] for p in paths}) == 2 and len(set(paths)) == 4  # two names, two run folders

    report = validate_dataset(url, decode_sample=0)
    assert (report.num_shards, report.records_per_split) == (4, {"train": 8})
    shard = f"{url}/{paths[3]}"
    with pytest.raises(DatasetError, match=f"cannot decode the image of record 0 of train shard {shard} "):
        validate_dataset(url)

    from dataset.manifest import shard_urls
    from training.input import InputSpec
    from training.storage import shard_staging

    urls = shard_urls(url, manifest, "train")
    spec = InputSpec(tuple(urls), "", parse=lambda batch: ({}, batch), threads=1)
    with shard_staging(url.replace("s3://", "s3a://")) as staging:  # training may be given s3a://
        local, own = staging.rank_spec(spec, rank=1, num_ranks=2)
        assert local.files == tuple(str(Path(staging.folder, p)) for p in paths)
        assert own == (local.files[1], local.files[3])
        assert sorted(str(p.relative_to(staging.folder)) for p in Path(staging.folder).rglob("*.tfrecord")) == sorted(
            [paths[1], paths[3]]
        )
        folder = staging.splits_folder(manifest, ("train",))
        for path, shard_url in zip(paths, urls):
            assert Path(folder, path).read_bytes() == store.cat_file(shard_url)

    summary = compact(url, CompactOptions(target_shard_mb=1.0, threads=2))  # on the store: one shard of 8 records
    assert (summary.shards_before, summary.shards_after) == ({"train": 4}, {"train": 1})
    assert split_records(url)["train"] == split_records(url, 2)["train"]
    assert validate_dataset(url, decode_sample=0).num_shards == 1


s3 = s3_bucket_fixture(scope="module")  # a bucket of this module's on the run's one S3Proxy


@pytest.fixture
def store(s3, monkeypatch):
    for key, value in s3.env().items():
        monkeypatch.setenv(key, value)
    return filesystem(f"s3://{s3.bucket}")[0]
