"""Versions on an S3-compatible server on loopback: the commit is a PUT with `If-None-Match: *`.

S3Proxy 4.0.0 honours the header (exactly one of N racing writers commits a version number); S3Proxy 2.6.0
ignores it (every writer is told it committed, the last one's file stays): this pins what docs/versions.md says.
"""

from __future__ import annotations

import dataclasses
import shutil

import pytest

from conversion.images.convert import convert_images
from conversion.images.options import ImageConvertOptions
from dataset.object_store import s3_filesystem
from dataset.versions import read_manifest, read_version
from jobs import versions as versions_job
from tests.s3server import s3_bucket_fixture, s3_server
from tests.test_versions import ONE, race, tree


@pytest.fixture(scope="module")
def local_history(spark, tmp_path_factory):
    """A dataset with versions 1 (tree a) and 2 (tree b), on local disk, to upload."""
    base = tmp_path_factory.mktemp("s3versions")
    a, b = tree(base / "a", {"cat": 5, "dog": 5}, 3), tree(base / "b", {"cat": 3, "dog": 4}, 4)
    out = base / "ds"
    convert_images(spark, ImageConvertOptions(str(a), str(out), splits=ONE, num_shards=2))
    convert_images(spark, ImageConvertOptions(str(b), str(out), splits=ONE, num_shards=2, mode="overwrite"))
    return out


def upload(local, bucket: str, name: str) -> str:
    fs = s3_filesystem()
    files = [p for p in local.rglob("*") if p.is_file()]
    fs.put([str(p) for p in files], [f"{bucket}/{name}/{p.relative_to(local).as_posix()}" for p in files])
    return f"s3://{bucket}/{name}"


bucket_4 = s3_bucket_fixture(scope="function", name="bucket_4")  # on the run's shared S3Proxy 4.0.0


@pytest.fixture
def s3_4(bucket_4, monkeypatch):
    for key, value in bucket_4.env().items():
        monkeypatch.setenv(key, value)
    return bucket_4


def test_s3proxy_4_lets_exactly_one_of_eight_racing_commits_win(s3_4, local_history):
    url = upload(local_history, s3_4.bucket, "race")
    fs = s3_filesystem()
    for _ in range(3):
        current = read_version(url)
        won, lost = race(url, current, current.manifest, 8)
        number = current.number + 1
        assert len(won) == 1 and len(lost) == 7
        assert set(lost) == {
            f"another run committed version {number} of {url} while this one ran; this run committed nothing: "
            "run it again"
        }
        fs.invalidate_cache()
        stored = read_version(url, number)
        assert stored.manifest.source_root == f"writer-{won[0]}"  # the winner's file, whole
        assert dataclasses.replace(stored.manifest, source_root="") == dataclasses.replace(
            current.manifest, source_root=""
        )


def test_rollback_and_vacuum_on_the_store(s3_4, local_history, tmp_path, capsys):
    url = upload(local_history, s3_4.bucket, "history")
    v1, v2 = read_version(url, 1), read_version(url, 2)
    assert versions_job.main(["--data", url, "--rollback", "1"]) == 0
    assert capsys.readouterr().out == f"version 3 of {url} is version 1's content (nothing deleted)\n"
    fs = s3_filesystem()
    fs.invalidate_cache()
    assert fs.cat_file(f"{url}/manifest.json") == fs.cat_file(f"{url}/_versions/00000003.json")
    assert read_manifest(url).splits == v1.manifest.splits
    assert versions_job.main(["--data", url, "--vacuum", "--keep", "2", "--yes"]) == 0
    report = capsys.readouterr().out.splitlines()
    assert report[0].split()[0] == "_versions/00000001.json"  # v1's manifest goes; its shards stay (v3 lists them)
    fs.invalidate_cache()
    left = {p.split("/history/", 1)[1] for p in fs.find(url)}
    assert {f"_versions/{n:08d}.json" for n in (2, 3)} <= left and "_versions/00000001.json" not in left
    assert {f.path for s in v1.manifest.splits.values() for f in s.files} <= left
    assert {f.path for s in v2.manifest.splits.values() for f in s.files} <= left  # v2 is kept too
    assert len(report) == 2 and report[1].startswith("deleted 1 files")


def test_s3proxy_2_6_ignores_if_none_match_so_a_concurrent_commit_can_be_lost(local_history, monkeypatch, tmp_path):
    with s3_server(version="2.6.0") as s3:
        for key, value in s3.env().items():
            monkeypatch.setenv(key, value)
        copy = tmp_path / "ds"
        shutil.copytree(local_history, copy)
        url = upload(copy, s3.bucket, "lossy")
        current = read_version(url)
        won, lost = race(url, current, current.manifest, 8)
        assert sorted(won) == list(range(8)) and lost == []  # all told they committed version 3...
        s3_filesystem().invalidate_cache()
        assert read_version(url, 3).manifest.source_root in {f"writer-{i}" for i in won}  # ...one file stays, whole
