"""`convert_images --mode append` on local disk: version N+1 = N's shards, untouched, + the new files' shards.

One tree of 8x8 PNGs grows across the tests; each test that changes the tree or the dataset works on copies.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conversion.images.convert import convert_images
from conversion.images.options import ImageConvertOptions
from conversion.publish import publish, staged_output
from dataset.errors import OptionError
from dataset.file_index import read_index
from dataset.manifest import ShardFile
from dataset.versions import CommitConflict, read_manifest, read_version
from jobs import convert_images as convert_job
from tests.example_reader import file_records, parse_example
from tests.images import image_bytes, write

REPO = Path(__file__).resolve().parents[1]
SPLITS = (("train", 0.7), ("test", 0.3))
MAX_BYTES = 4096  # cat/big.png (64x64 random pixels) is larger: rejected as too large


def options(root: Path, out: Path, **kw) -> ImageConvertOptions:
    values = dict(splits=SPLITS, num_shards=2, mode="append", max_reject_fraction=0.2)
    values["transform"] = dataclasses.replace(ImageConvertOptions("i", "o").transform, max_bytes=MAX_BYTES)
    values.update(kw)
    return ImageConvertOptions(str(root), str(out), **values)


def png(seed: int, size: int = 8) -> bytes:
    return image_bytes("PNG", (size, size), seed=seed)


def records(out: Path | str, version: int | None = None, read=None) -> list[tuple[str, str, str, str]]:
    """Every record of a version: (split, filename, sha256 of the image bytes, label text), sorted."""
    manifest = read_manifest(str(out), version)
    found = []
    for split, info in manifest.splits.items():
        for shard in info.files:
            for record in read(shard.path) if read else file_records(Path(out) / shard.path):
                example = parse_example(record)
                found.append(
                    (
                        split,
                        example["image/filename"][0].decode(),
                        hashlib.sha256(example["image/encoded"][0]).hexdigest(),
                        example["image/class/text"][0].decode(),
                    )
                )
    assert len(found) == manifest.num_records
    return sorted(found)


def record_digests(out: Path, version: int | None = None) -> list[tuple[str, str]]:
    """(split, sha256 of the whole record) of every record of a version, sorted."""
    manifest = read_manifest(str(out), version)
    return sorted(
        (split, hashlib.sha256(record).hexdigest())
        for split, info in manifest.splits.items()
        for shard in info.files
        for record in file_records(out / shard.path)
    )


def unique_names(manifest) -> bool:
    """Whether no two shards of a version share a file name (readers copy shards side by side by their names)."""
    names = [Path(f.path).name for info in manifest.splits.values() for f in info.files]
    return len(set(names)) == len(names)


def digests(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@dataclasses.dataclass(frozen=True)
class Grown:
    root: Path  # the tree as version 2 saw it
    out: Path  # versions 1 (append on a missing folder) and 2 (append of 4 new files)
    full: Path  # a full conversion of the same tree
    v1_files: dict[str, str]  # the dataset folder's files after version 1, with their digests
    summary: str  # version 2's summary text


@pytest.fixture(scope="module")
def grown(spark, tmp_path_factory) -> Grown:
    base = tmp_path_factory.mktemp("append")
    root, out = base / "tree", base / "ds"
    for label in ("cat", "dog"):
        for i in range(8):
            write(root, f"{label}/{i}.png", png(100 * len(label) + i))
    write(root, "cat/big.png", png(7, 64))
    write(root, "dog/.DS_Store", b"finder")
    convert_images(spark, options(root, out))
    v1_files = digests(out)
    for name, seed in (("cat/8.png", 50), ("cat/9.png", 51), ("zebra/0.png", 52), ("zebra/1.png", 53)):
        write(root, name, png(seed))
    summary = convert_images(spark, options(root, out)).text()
    full = base / "full"
    convert_images(spark, options(root, full, mode="error"))
    return Grown(root, out, full, v1_files, summary)


def copies(grown: Grown, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the tree (mtimes kept) and of the dataset, to change."""
    root, out = tmp_path / "tree", tmp_path / "ds"
    shutil.copytree(grown.root, root)
    shutil.copytree(grown.out, out)
    return root, out


def test_version_1_of_a_missing_folder_is_a_full_conversion_with_a_file_index(grown):
    v1 = read_version(str(grown.out), 1)
    assert (v1.number, v1.info.operation, v1.info.parent) == (1, "convert", None)
    assert v1.manifest.file_index == f"{v1.info.run}/_files.parquet"
    index = read_index(str(grown.out), v1.manifest)
    rows = {r["relpath"]: r for r in index.table.to_pylist()}
    assert sorted(rows) == sorted(
        ["cat/big.png", "dog/.DS_Store", *(f"{label}/{i}.png" for label in ("cat", "dog") for i in range(8))]
    )
    cat0 = grown.root / "cat/0.png"
    assert rows["cat/0.png"]["size"] == cat0.stat().st_size and rows["cat/0.png"]["stamp"] == str(
        cat0.stat().st_mtime_ns
    )
    assert (rows["cat/big.png"]["status"], rows["cat/big.png"]["reason"], rows["cat/big.png"]["shard"]) == (
        "rejected",
        "too_large",
        None,
    )
    assert (rows["dog/.DS_Store"]["status"], rows["dog/.DS_Store"]["reason"]) == ("skipped", "hidden")
    shards = {f.path: split for split, info in v1.manifest.splits.items() for f in info.files}
    for relpath, row in rows.items():
        if row["status"] == "written":
            assert shards[row["shard"]] == row["split"]
    assert {(s, f, label) for s, f, _, label in records(grown.out, 1)} == {
        (rows[f]["split"], f, f.split("/")[0]) for f in rows if rows[f]["status"] == "written"
    }


def test_an_append_adds_shards_rewrites_none_and_equals_a_full_conversion(grown):
    v1, v2 = read_version(str(grown.out), 1), read_version(str(grown.out), 2)
    after = digests(grown.out)
    for path, digest in grown.v1_files.items():  # every file of version 1, shards included: same name, same bytes
        if path.startswith("run-"):
            assert after[path] == digest, path
    assert (v2.info.operation, v2.info.parent, v2.info.removed) == ("append", 1, ())
    v1_shards = [f.path for info in v1.manifest.splits.values() for f in info.files]
    assert {f.path for info in v2.manifest.splits.values() for f in info.files} == {*v1_shards, *v2.info.added}
    assert all(path.startswith(v2.info.run + "/") for path in v2.info.added) and v2.info.added
    token = v2.info.run.rsplit("-", 1)[1]  # an append's shards carry its run's token: no file name twice in a version
    assert all(Path(path).name.endswith(f"-{token}.tfrecord") for path in v2.info.added)
    assert unique_names(v2.manifest)

    full = read_manifest(str(grown.full))
    assert records(grown.out) == records(grown.full)  # per split: same files, same image bytes, same labels
    assert record_digests(grown.out) == record_digests(grown.full)  # and the same bytes per record
    assert v2.manifest.labels == ("cat", "dog", "zebra") == full.labels  # zebra sorts last: same ids here
    for name, split in full.splits.items():
        assert v2.manifest.splits[name].label_counts == split.label_counts
        assert v2.manifest.splits[name].num_records == split.num_records
    assert (v2.manifest.num_files_seen, v2.manifest.num_rejected) == (full.num_files_seen, full.num_rejected)
    assert (v2.manifest.num_files_seen, v2.manifest.num_rejected) == (22, {"hidden": 1, "too_large": 1})
    v2.manifest.check()

    assert len(records(grown.out, 1)) == 16  # the pin reads version 1's records alone
    assert {r[1] for r in records(grown.out)} - {r[1] for r in records(grown.out, 1)} == {
        "cat/8.png",
        "cat/9.png",
        "zebra/0.png",
        "zebra/1.png",
    }
    lines = grown.summary.splitlines()
    assert lines[0].startswith(f"Converted 4 images into {grown.out} in ")
    train, test = v2.manifest.splits["train"].num_records, v2.manifest.splits["test"].num_records
    assert lines[1] == f"  version 2 = version 1 + 4 new records; records now: test {test}, train {train}"
    assert lines[2] == "  new labels, numbered after version 1's: zebra=2"
    assert "  rejected: none  (of 4 files seen; see _rejected/rejected.jsonl)" in lines


def test_a_rerun_with_nothing_new_commits_nothing_and_says_so(grown, tmp_path, capsys):
    root, out = copies(grown, tmp_path)
    before = digests(out)
    argv = ["--input", str(root), "--output", str(out), "--mode", "append", "--splits", "train=0.7,test=0.3"]
    assert convert_job.main([*argv, "--num-shards", "2", "--quiet"]) == 0
    assert capsys.readouterr().out == f"nothing new under {root} since version 2; nothing committed\n"
    assert digests(out) == before  # no version, no run folder


def test_changed_and_deleted_files_kept_by_default_and_replaced_on_request(spark, grown, tmp_path):
    root, out = copies(grown, tmp_path)
    v2 = read_version(str(out))
    index = {r["relpath"]: r for r in read_index(str(out), v2.manifest).table.to_pylist()}
    changed, deleted = "cat/3.png", "dog/5.png"
    write(root, changed, png(999))
    os.remove(root / deleted)
    before = digests(out)

    kept = convert_images(spark, options(root, out)).text()
    assert kept.splitlines() == [
        f"nothing new under {root} since version 2; nothing committed",
        "kept the records of 1 changed and 1 deleted source files as they were (--on-change keep); "
        "--on-change replace rewrites the shards that hold them",
    ]
    assert digests(out) == before

    summary = convert_images(spark, options(root, out, on_change="replace")).text()
    v3 = read_version(str(out))
    assert "  replaced the records of 2 changed or deleted source files (--on-change replace)" in summary
    held = {index[changed]["shard"], index[deleted]["shard"]}
    assert set(v3.info.removed) == held  # only the shards that held them
    after = digests(out)
    for path in {f.path for info in v2.manifest.splits.values() for f in info.files} - held:
        assert after[path] == before[path]
    expected = [r for r in records(out, 2) if r[1] not in (changed, deleted)]
    new_record = (index[changed]["split"], changed, hashlib.sha256(png(999)).hexdigest(), "cat")
    assert records(out) == sorted([*expected, new_record])  # the changed record carries the new bytes
    assert deleted in {r[1] for r in records(out, 2)}  # and version 2 still reads the old ones
    assert v3.manifest.num_files_seen == 21 and v3.manifest.num_records == 19
    rows = {r["relpath"]: r for r in read_index(str(out), v3.manifest).table.to_pylist()}
    assert deleted not in rows and rows[changed]["stamp"] == str((root / changed).stat().st_mtime_ns)
    assert rows[changed]["shard"].startswith(v3.info.run + "/") and unique_names(v3.manifest)


def test_list_prefix_lists_only_that_folder_and_the_index_refuses_what_it_has(spark, grown, tmp_path):
    root, out = copies(grown, tmp_path)
    write(root, "cat/2026-12-06/a.png", png(61))
    write(root, "cat/2026-12-06/b.png", png(62))
    write(root, "dog/late.png", png(63))  # outside the prefix: not listed, not converted
    convert_images(spark, options(root, out, list_prefix="cat"))  # cat/0..9 are known, only the day folder is new
    v3 = read_version(str(out))
    assert {r[1] for r in records(out)} - {r[1] for r in records(out, 2)} == {
        "cat/2026-12-06/a.png",
        "cat/2026-12-06/b.png",
    }
    full = tmp_path / "full"
    write(tmp_path / "day", "cat/2026-12-06/a.png", png(61))  # the split hash is of the path relative to ROOT
    convert_images(spark, options(tmp_path / "day", full, mode="error"))
    assert {r for r in records(out) if r[1] == "cat/2026-12-06/a.png"} == set(records(full))
    again = convert_images(spark, options(root, out, list_prefix="cat/2026-12-06")).text()
    assert again == f"nothing new under {root}/cat/2026-12-06 since version 3; nothing committed"
    assert read_version(str(out)).number == v3.number
    write(root, "cat/2026-12-07/c.png", png(64))  # the next day lands in every label folder
    write(root, "dog/2026-12-07/d.png", png(65))
    (root / "cat" / "2026-12-06" / "a.png").unlink()  # under another day: not listed, so not seen as deleted
    convert_images(spark, options(root, out, list_prefix="*/2026-12-07"))
    assert {r[1] for r in records(out)} - {r[1] for r in records(out, 3)} == {
        "cat/2026-12-07/c.png",
        "dog/2026-12-07/d.png",
    }
    assert "cat/2026-12-06/a.png" in {r[1] for r in records(out)} and read_version(str(out)).number == v3.number + 1


def test_rejects_are_retried_only_when_asked(spark, grown, tmp_path):
    root, out = copies(grown, tmp_path)
    bigger = dataclasses.replace(options(root, out).transform, max_bytes=1 << 20)
    assert convert_images(spark, options(root, out, transform=bigger)).text().startswith("nothing new under")
    summary = convert_images(spark, options(root, out, transform=bigger, retry_rejected=True)).text()
    assert summary.startswith(f"Converted 1 images into {out}")
    v3 = read_manifest(str(out))
    assert "cat/big.png" in {r[1] for r in records(out)}
    assert (v3.num_files_seen, v3.num_rejected, v3.num_records) == (22, {"hidden": 1}, 21)


def test_an_append_refuses_options_that_would_write_other_records(spark, grown, tmp_path):
    root, out = copies(grown, tmp_path)
    with pytest.raises(OptionError, match=r"^--compression gzip differs from version 2's none: an append writes"):
        convert_images(spark, options(root, out, compression="gzip"))
    with pytest.raises(OptionError, match=r"^--labels dog,cat does not begin with version 2's labels cat,dog,zebra"):
        convert_images(spark, options(root, out, labels=("dog", "cat")))
    assert read_version(str(out)).number == 2
    assert {p.name for p in out.glob("run-*")} == {p.name for p in grown.out.glob("run-*")}  # none left behind


def adding_a_shard(run, parent, shard: ShardFile):
    """The manifest of version 2 plus a copy of one of its shards written by `run`."""
    shutil.copy(Path(run.output) / shard.path, f"{run.path}/train-00000-of-00001.tfrecord")
    added = ShardFile(run.relpath("train-00000-of-00001.tfrecord"), shard.num_records, shard.bytes)
    train = parent.manifest.splits["train"]
    split = dataclasses.replace(train, files=(*train.files, added), num_records=train.num_records + shard.num_records)
    return dataclasses.replace(
        parent.manifest,
        splits={**parent.manifest.splits, "train": split},
        num_files_seen=parent.manifest.num_files_seen + shard.num_records,
    )


@pytest.mark.parametrize("first", [0, 1])
def test_of_two_appends_on_one_version_exactly_one_commits_in_either_order(grown, tmp_path, first):
    out = tmp_path / "ds"
    shutil.copytree(grown.out, out)
    parent = read_version(str(out))
    shard = parent.manifest.splits["train"].files[0]
    runs = []
    with pytest.raises(CommitConflict) as lost:
        with staged_output(None, str(out), "append") as one, staged_output(None, str(out), "append") as two:
            manifests = [adding_a_shard(run, parent, shard) for run in (one, two)]  # both begun on version 2
            runs = [one, two]
            winner, loser = runs[first], runs[1 - first]
            publish(winner, manifests[first], 0, 1, 0.0, "images", operation="append", in_run=False)
            publish(loser, manifests[1 - first], 0, 1, 0.0, "images", operation="append", in_run=False)
    assert str(lost.value) == (
        f"another run committed version 3 of {out} while this one ran; this run committed nothing: run it again"
    )
    v3 = read_version(str(out))
    assert (v3.number, v3.info.run, v3.info.operation) == (3, winner.run, "append")
    assert v3.info.added == (winner.relpath("train-00000-of-00001.tfrecord"),)
    assert all((out / f.path).is_file() for info in v3.manifest.splits.values() for f in info.files)  # none lost
    assert not Path(loser.path).exists() and Path(winner.path).is_dir()
    assert (out / "manifest.json").read_bytes() == (out / "_versions/00000003.json").read_bytes()


def kill_mid_append(root: str, out: str, env: dict[str, str], paused) -> None:
    """Run the append job in a process of its own, stopped by the test hook after its first record, and kill it
    (its process group: the driver, its JVM and Python workers) there."""
    argv = [sys.executable, str(REPO / "jobs/convert_images.py"), "--input", root, "--output", out]
    argv += ["--mode", "append", "--splits", "train=0.7,test=0.3", "--num-shards", "2", "--quiet"]
    argv += ["--max-bytes", str(MAX_BYTES), "--conf", "spark.tfrecordpipe.test.pauseAfterRecords=1"]
    job = subprocess.Popen(
        argv, env={**os.environ, **env, "PYTHONPATH": str(REPO)}, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not paused() and job.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert job.poll() is None, job.stderr.read().decode()[-2000:] if job.stderr else ""
        assert paused(), "the job did not reach the pause in 120 s"
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
        job.wait()


@pytest.mark.slow
def test_a_killed_append_leaves_the_current_version_whole_and_the_rerun_commits(spark, grown, tmp_path):
    root, out = copies(grown, tmp_path)
    for i in range(4):
        write(root, f"dog/new-{i}.png", png(70 + i))
    before = records(out)
    kill_mid_append(str(root), str(out), {}, lambda: any(out.glob("run-*/_paused")))
    (killed,) = [p for p in out.glob("run-*") if (p / "_paused").exists()]
    assert any(killed.glob("*.tfrecord"))  # it was writing
    assert read_version(str(out)).number == 2 and records(out) == before  # version 2 current and complete
    convert_images(spark, options(root, out))
    v3 = read_version(str(out))
    assert v3.number == 3 and killed.name not in {
        f.path.split("/")[0] for i in v3.manifest.splits.values() for f in i.files
    }
    assert {r[1] for r in records(out)} - {r[1] for r in before} == {f"dog/new-{i}.png" for i in range(4)}


def make_legacy(source: Path, out: Path) -> None:
    """`source` (a one-version dataset) copied into the layout before versions and file indexes: shards, manifest.json
    (no version section, no file index), _rejected and _SUCCESS at the root."""
    version = read_version(str(source))
    out.mkdir()
    for name in ("_SUCCESS", "_rejected"):
        shutil.copytree(source / name, out / name) if (source / name).is_dir() else shutil.copy(source / name, out)
    splits = {}
    for split, info in version.manifest.splits.items():
        for f in info.files:
            shutil.copy(source / f.path, out / Path(f.path).name)
        files = tuple(ShardFile(Path(f.path).name, f.num_records, f.bytes) for f in info.files)
        splits[split] = dataclasses.replace(info, files=files)
    (out / "manifest.json").write_text(
        dataclasses.replace(version.manifest, splits=splits, file_index=None)
        .to_json()
        .replace('  "file_index": null,\n', "")
    )


def test_a_folder_without_a_file_index_takes_appends_converting_only_new_files(spark, grown, tmp_path):
    root = tmp_path / "tree"
    shutil.copytree(grown.root, root)
    legacy = tmp_path / "legacy"
    make_legacy(grown.full, legacy)
    assert "file_index" not in (legacy / "manifest.json").read_text()
    before = digests(legacy)
    write(root, "dog/8.png", png(80))
    write(root, "zebra/2.png", png(81))
    summary = convert_images(spark, options(root, legacy)).text().splitlines()
    assert summary[0].startswith(f"Converted 2 images into {legacy} in ")
    assert summary[2] == (
        "  version 1 has no file index: built one from its 20 records' filenames and its rejected report "
        "(sizes and stamps unknown: those files count as unchanged)"
    )
    after = digests(legacy)
    assert all(after[p] == before[p] for p in before if p.endswith(".tfrecord"))  # the old shards untouched
    v2 = read_version(str(legacy))
    assert (v2.number, v2.info.operation, v2.info.parent) == (2, "append", 1)
    assert {r[1] for r in records(legacy)} - {r[1] for r in records(legacy, 1)} == {"dog/8.png", "zebra/2.png"}
    assert (v2.manifest.num_files_seen, v2.manifest.num_rejected) == (24, {"hidden": 1, "too_large": 1})
    rows = {r["relpath"]: r for r in read_index(str(legacy), v2.manifest).table.to_pylist()}
    assert (rows["cat/0.png"]["size"], rows["cat/0.png"]["stamp"]) == (-1, None)  # unknown: counts as unchanged
    assert rows["cat/0.png"]["shard"] in {f.name for f in legacy.glob("*.tfrecord")}
    assert rows["dog/8.png"]["size"] == (root / "dog/8.png").stat().st_size
    again = convert_images(spark, options(root, legacy)).text()
    assert again == f"nothing new under {root} since version 2; nothing committed"


def test_a_gzip_shard_rewritten_without_some_records_keeps_the_others_byte_for_byte_and_stays_gzip(tmp_path):
    from conversion.example_proto import encode_example
    from conversion.images.shard_walk import Rewrite, rewrite_shard, shard_keys
    from dataset.tfrecord import TFRecordFileWriter

    examples = [
        encode_example({"image/encoded": png(i), "image/filename": f"cat/{i}.png", "image/class/text": "cat"})
        for i in range(4)
    ]
    source = tmp_path / "train-00000-of-00001.tfrecord.gz"
    with TFRecordFileWriter(open(source, "wb"), "gzip") as writer:
        for example in examples:
            writer.write(example)
    assert shard_keys("s", str(source)).keys == tuple((f"cat/{i}.png", "cat") for i in range(4))
    target = tmp_path / "copy.tfrecord.gz"
    job = Rewrite("s", str(source), "t", str(target), "gzip", frozenset({"cat/1.png", "cat/3.png"}))
    done = rewrite_shard(job)
    assert (done.target, done.num_records, done.num_bytes) == ("t", 2, target.stat().st_size)
    assert (done.dropped, done.dropped_labels) == (("cat/1.png", "cat/3.png"), {"cat": 2})
    assert target.read_bytes()[:2] == b"\x1f\x8b" and file_records(target) == [examples[0], examples[2]]
    gone = rewrite_shard(dataclasses.replace(job, drop=frozenset(f"cat/{i}.png" for i in range(4))))
    assert (gone.target, gone.num_records) == (None, 0)


def test_a_fixed_label_list_stays_fixed_and_grows_only_at_its_end(spark, grown, tmp_path):
    root = tmp_path / "tree"
    shutil.copytree(grown.root, root)
    out = tmp_path / "fixed"
    convert_images(spark, options(root, out, labels=("cat", "dog")))  # zebra/0 and zebra/1: unknown_label
    write(root, "cat/10.png", png(90))
    write(root, "zebra/9.png", png(91))
    convert_images(spark, options(root, out, max_reject_fraction=0.5))  # no --labels: version 1's list holds
    v2 = read_version(str(out))
    assert v2.manifest.labels == ("cat", "dog") and v2.manifest.num_rejected["unknown_label"] == 3
    assert {r[1] for r in records(out)} - {r[1] for r in records(out, 1)} == {"cat/10.png"}
    retried = options(root, out, labels=("cat", "dog", "zebra"), retry_rejected=True, max_reject_fraction=0.5)
    assert (
        convert_images(spark, retried).text().startswith(f"Converted 3 images into {out}")
    )  # big.png: again too large
    v3 = read_version(str(out))
    assert v3.manifest.labels == ("cat", "dog", "zebra") and "unknown_label" not in v3.manifest.num_rejected
    zebras = [r for r in records(out) if r[3] == "zebra"]
    assert sorted(r[1] for r in zebras) == ["zebra/0.png", "zebra/1.png", "zebra/9.png"]
    ids = {
        parse_example(record)["image/class/label"][0]
        for info in v3.manifest.splits.values()
        for shard in info.files
        for record in file_records(out / shard.path)
        if parse_example(record)["image/class/text"][0] == b"zebra"
    }
    assert ids == {2}
