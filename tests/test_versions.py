"""Versioned dataset folders on local disk: the version log, the one commit path, rollback, vacuum, pins, races."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from conversion.images.convert import convert_images
from conversion.images.options import ImageConvertOptions
from conversion.publish import publish, staged_output
from dataset.errors import DatasetError
from dataset.manifest import Manifest, ShardFile
from dataset.versions import CommitConflict, commit_version, read_manifest, read_version
from jobs import export_parquet as export_parquet_job
from jobs import train as train_job
from jobs import validate as validate_job
from jobs import versions as versions_job
from tests.images import image_bytes, write
from tests.test_convert_images import read_records

ONE = (("train", 1.0),)


def tree(root: Path, labels: dict[str, int], seed: int) -> Path:
    """`labels[label]` small PNGs per label folder, distinct bytes per seed."""
    for label, count in labels.items():
        for i in range(count):
            write(root, f"{label}/{seed}-{i}.png", image_bytes("PNG", (6 + i % 3, 5), seed=seed * 1000 + i))
    return root


def digests(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def trees(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("trees")
    return tree(base / "a", {"cat": 6, "dog": 6}, 1), tree(base / "b", {"cat": 4, "dog": 5}, 2)


def make_legacy(spark, source: Path, out: Path) -> None:
    """A folder in the format before versions: shards, manifest.json (format 2, no version section), _rejected,
    _SUCCESS at the root. Written by today's conversion and moved into that layout."""
    convert_images(spark, ImageConvertOptions(str(source), str(out), splits=ONE, num_shards=2))
    (run,) = out.glob("run-*")
    for shard in run.glob("*.tfrecord"):
        shard.rename(out / shard.name)
    shutil.rmtree(run)
    shutil.rmtree(out / "_versions")
    for name in ("dataset_info.json", "features.json", "image.class.label.labels.txt"):  # TFDS metadata came later
        (out / name).unlink()
    manifest = read_version_text(out / "manifest.json")
    stripped = {
        name: dataclasses.replace(
            split, files=tuple(ShardFile(f.path.split("/")[1], f.num_records, f.bytes) for f in split.files)
        )
        for name, split in manifest.splits.items()
    }
    (out / "manifest.json").write_text(dataclasses.replace(manifest, splits=stripped).to_json())


def read_version_text(path: Path) -> Manifest:
    return Manifest.from_json(path.read_text())


def test_a_folder_from_before_versions_reads_as_version_1_and_takes_a_version_without_touching_its_shards(
    spark, trees, tmp_path
):
    a, b = trees
    out = tmp_path / "legacy"
    make_legacy(spark, a, out)
    before = digests(out)
    assert sorted(before) == [
        "_SUCCESS", "_rejected/rejected.jsonl", "manifest.json", "train-00000-of-00002.tfrecord",
        "train-00001-of-00002.tfrecord",
    ]  # fmt: skip
    legacy = read_version(str(out))
    assert (legacy.number, legacy.info.parent, legacy.info.operation) == (1, None, "convert")
    assert legacy.sha256 == before["manifest.json"]
    records_v1 = read_records(out)
    assert len(records_v1) == 12

    convert_images(spark, ImageConvertOptions(str(b), str(out), splits=ONE, num_shards=2, mode="overwrite"))
    after = digests(out)
    for name in ("train-00000-of-00002.tfrecord", "train-00001-of-00002.tfrecord"):
        assert after[name] == before[name]  # the old shards: same names, same bytes
    assert after["_versions/00000001.json"] == before["manifest.json"]  # version 1 entered the log byte for byte
    v2 = read_version(str(out))
    (run,) = out.glob("run-*")
    assert (v2.number, v2.info.parent, v2.info.operation, v2.info.run) == (2, 1, "overwrite", run.name)
    assert v2.info.removed == ("train-00000-of-00002.tfrecord", "train-00001-of-00002.tfrecord")
    assert v2.info.added == (f"{run.name}/train-00000-of-00002.tfrecord", f"{run.name}/train-00001-of-00002.tfrecord")
    assert after["manifest.json"] == after["_versions/00000002.json"] == v2.sha256
    assert read_version(str(out), 1).sha256 == legacy.sha256
    assert len(read_records(out)) == 9


def records_of(out: Path, version: int) -> set[str]:
    manifest = read_manifest(str(out), version)
    return {name for name in _records(out, manifest)}


def _records(out: Path, manifest: Manifest) -> dict[str, dict]:
    pinned = out.parent / f"{out.name}-pin"  # read_records reads the current version: pin a copy of this one
    shutil.rmtree(pinned, ignore_errors=True)
    pinned.mkdir()
    for split in manifest.splits.values():
        for f in split.files:
            os.link(out / f.path, pinned / f.path.replace("/", "_"))
    moved = {
        name: dataclasses.replace(
            split, files=tuple(ShardFile(f.path.replace("/", "_"), f.num_records, f.bytes) for f in split.files)
        )
        for name, split in manifest.splits.items()
    }
    (pinned / "manifest.json").write_text(dataclasses.replace(manifest, splits=moved).to_json())
    (pinned / "_SUCCESS").write_text("")
    return read_records(pinned)


@pytest.fixture(scope="module")
def history(spark, trees, tmp_path_factory) -> Path:
    """Version 1 from tree a, 2 from tree b (overwrite), 3 = a rollback to 1."""
    a, b = trees
    out = tmp_path_factory.mktemp("history") / "ds"
    convert_images(spark, ImageConvertOptions(str(a), str(out), splits=ONE, num_shards=2))
    convert_images(spark, ImageConvertOptions(str(b), str(out), splits=ONE, num_shards=3, mode="overwrite"))
    assert versions_job.main(["--data", str(out), "--rollback", "1"]) == 0
    return out


def test_overwrite_is_a_new_version_rollback_restores_and_pins_read_exactly_their_records(history, trees, capsys):
    a, b = trees
    names_a = {p.relative_to(a).as_posix() for p in a.rglob("*.png")}
    names_b = {p.relative_to(b).as_posix() for p in b.rglob("*.png")}
    assert records_of(history, 1) == names_a and records_of(history, 2) == names_b
    assert records_of(history, 3) == names_a and records_of(history, None) == names_a
    v1, v3 = read_version(str(history), 1), read_version(str(history), 3)
    assert v3.manifest.splits == v1.manifest.splits  # the same shards: nothing rewritten
    assert (v3.info.operation, v3.info.rollback_of, v3.info.parent, v3.info.run) == ("rollback", 1, 2, None)
    assert (history / "manifest.json").read_bytes() == (history / "_versions" / "00000003.json").read_bytes()
    runs = {p.name for p in history.glob("run-*")}
    assert runs == {v1.info.run, read_version(str(history), 2).info.run}
    assert (history / "_rejected" / "rejected.jsonl").read_bytes() == (
        history / v1.info.run / "_rejected" / "rejected.jsonl"
    ).read_bytes()  # the current version's report

    capsys.readouterr()
    assert versions_job.main(["--data", str(history)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{history}: 3 versions (* current)"
    v2 = read_version(str(history), 2)
    assert lines[1:] == [
        f"    1  {v1.info.committed_at}  parent    -  convert         train=12  +2 -0 files  2 shards",
        f"    2  {v2.info.committed_at}  parent    1  overwrite       train=9  +3 -2 files  3 shards",
        f"*   3  {v3.info.committed_at}  parent    2  rollback of 1   train=12  +2 -3 files  2 shards",
    ]


def test_version_flag_on_validate_and_a_missing_version_is_one_line(history, capsys):
    assert validate_job.main(["--data", str(history), "--version", "2", "--no-decode"]) == 0
    out = capsys.readouterr().out
    assert "9 records" in out and "not in the manifest" not in out
    assert validate_job.main(["--data", str(history), "--version", "7"]) == 2
    assert capsys.readouterr().err == (
        f"error: {history} has no version 7; it has versions 1-3 (python jobs/versions.py --data {history} lists them)\n"
    )


def test_a_missing_version_is_one_line_in_train_and_export_parquet(spark, history, tmp_path, capsys):
    missing = f"error: {history} has no version 9; it has versions 1-3 (python jobs/versions.py --data {history} lists them)\n"
    argv = ["--data", str(history), "--version", "9", "--output", str(tmp_path / "parquet")]
    assert export_parquet_job.main(argv) == 2
    assert capsys.readouterr().err == missing
    assert train_job.main(["--data", str(history), "--version", "9", "--model-dir", str(tmp_path / "model")]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == missing.strip()
    assert not (tmp_path / "parquet").exists() and not (tmp_path / "model").exists()


def test_export_parquet_reads_the_version_asked_for(spark, history, tmp_path):
    out = tmp_path / "v2"
    assert export_parquet_job.main(["--data", str(history), "--version", "2", "--output", str(out)]) == 0
    rows = spark.read.parquet(str(out)).select("`image/filename`").collect()
    assert {r[0] for r in rows} == records_of(history, 2)


def test_vacuum_keeps_what_kept_versions_list_and_removes_old_unlisted_runs(spark, trees, tmp_path, capsys):
    a, b = trees
    out = tmp_path / "vac"
    convert_images(spark, ImageConvertOptions(str(a), str(out), splits=ONE, num_shards=2))
    convert_images(spark, ImageConvertOptions(str(b), str(out), splits=ONE, num_shards=3, mode="overwrite"))
    versions_job.main(["--data", str(out), "--rollback", "1"])
    run_a, run_b = read_version(str(out), 1).info.run, read_version(str(out), 2).info.run
    old = out / "run-20200101T000000Z-deadbeef"  # a killed run: no version lists it, last written long ago
    write(old, "train-00000-of-00001.tfrecord", b"partial")
    os.utime(old / "train-00000-of-00001.tfrecord", (time.time() - 48 * 3600,) * 2)
    young = out / "run-29990101T000000Z-0badcafe"  # a run still writing: no version lists it yet
    write(young, "train-00000-of-00001.tfrecord", b"being written")
    write(out, "notes.txt", b"not written by a conversion")
    lost = "train-00001-of-00002-deadbeef.tfrecord.tmp-3"  # a lost attempt of an append's (tagged) shard
    write(out / run_a, lost, b"lost attempt")
    os.utime(out / run_a / lost, (time.time() - 48 * 3600,) * 2)
    before = digests(out)
    capsys.readouterr()

    assert versions_job.main(["--data", str(out), "--vacuum", "--keep", "1"]) == 0  # dry run
    dry = capsys.readouterr().out.splitlines()
    assert digests(out) == before
    doomed = [line.split()[0] for line in dry[:-1]]
    b_files = sorted(p for p in before if p.startswith(run_b + "/"))
    killed = "run-20200101T000000Z-deadbeef/train-00000-of-00001.tfrecord"
    assert doomed == ["_versions/00000001.json", "_versions/00000002.json", *sorted([*b_files, killed, f"{run_a}/{lost}"])]
    total = sum((out / p).stat().st_size for p in doomed)
    assert dry[-1] == (
        f"would delete {len(doomed)} files, {total} bytes, from {out}; versions kept: 3 (dry run: pass --yes to delete)"
    )

    assert versions_job.main(["--data", str(out), "--vacuum", "--keep", "1", "--yes"]) == 0
    assert (
        capsys.readouterr().out.splitlines()[-1]
        == f"deleted {len(doomed)} files, {total} bytes, from {out}; versions kept: 3"
    )
    left = digests(out)
    assert sorted(left) == sorted(set(before) - set(doomed))
    assert not (out / run_b).exists() and not old.exists() and young.exists() and (out / "notes.txt").exists()
    assert all(left[p] == before[p] for p in left if p.startswith(run_a))
    assert read_version(str(out)).number == 3 and records_of(out, None) == records_of(out, 3)
    with pytest.raises(DatasetError, match="has no version 1; it has versions 3"):
        read_manifest(str(out), 1)
    assert validate_job.main(["--data", str(out), "--no-decode"]) == 0
    assert "run-29990101T000000Z-0badcafe/train-00000-of-00001.tfrecord" in capsys.readouterr().out  # still unlisted


def test_vacuum_keep_must_be_positive(history, capsys):
    assert versions_job.main(["--data", str(history), "--vacuum", "--keep", "0"]) == 2
    assert capsys.readouterr().err == "error: --keep must be at least 1 (the current version is always kept), got 0\n"


def test_of_two_runs_committing_the_same_version_the_second_refuses_and_removes_its_files(spark, trees, tmp_path):
    a, _ = trees
    out = tmp_path / "race"
    convert_images(spark, ImageConvertOptions(str(a), str(out), splits=ONE, num_shards=2))
    v1 = read_version(str(out))
    source = out / v1.info.run

    def same_content(run) -> Manifest:
        for f in v1.manifest.splits["train"].files:
            shutil.copy(out / f.path, f"{run.path}/{Path(f.path).name}")
        return dataclasses.replace(
            v1.manifest,
            splits={"train": dataclasses.replace(v1.manifest.splits["train"], files=tuple(
                ShardFile(Path(f.path).name, f.num_records, f.bytes) for f in v1.manifest.splits["train"].files))},
        )  # fmt: skip

    with staged_output(None, str(out), "overwrite") as first:
        with pytest.raises(CommitConflict) as lost:
            with staged_output(None, str(out), "overwrite") as second:
                manifest = same_content(first)
                publish(first, manifest, 0, manifest.num_records, 0.0, "images")  # the first commits version 2
                publish(second, same_content(second), 0, manifest.num_records, 0.0, "images")
    assert str(lost.value) == (
        f"another run committed version 2 of {out} while this one ran; this run committed nothing: run it again"
    )
    assert "\n" not in str(lost.value)
    assert sorted(p.name for p in out.glob("run-*")) == sorted([source.name, first.run])  # the loser's folder is gone
    assert read_version(str(out)).info.run == first.run and read_version(str(out)).number == 2


def race(url: str, parent, manifest: Manifest, writers: int) -> tuple[list[int], list[str]]:
    """`writers` threads commit the version after `parent` at once; (winners' ids, losers' messages)."""
    start = threading.Barrier(writers)
    won, lost = [], []

    def one(i: int) -> None:
        start.wait()
        try:
            commit_version(url, dataclasses.replace(manifest, source_root=f"writer-{i}"), "overwrite", parent)
            won.append(i)
        except CommitConflict as err:
            lost.append(str(err))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return won, lost


def test_concurrent_commits_on_local_disk_exactly_one_wins(history, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(history, out)
    current = read_version(str(out))
    for rounds in range(5):
        won, lost = race(str(out), current, current.manifest, 8)
        number = current.number + 1
        assert len(won) == 1 and len(lost) == 7
        assert set(lost) == {
            f"another run committed version {number} of {out} while this one ran; this run committed nothing: run it again"
        }
        stored = json.loads((out / "_versions" / f"{number:08d}.json").read_text())
        assert stored["source_root"] == f"writer-{won[0]}"
        current = read_version(str(out))
        assert current.number == number
