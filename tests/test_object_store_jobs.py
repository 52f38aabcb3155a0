"""The jobs on an S3-compatible server (S3Proxy on 127.0.0.1): the standard AWS variables reach every component,
`s3://` and `s3a://` both work, and the commit (conversion/publish.py: a run folder and one version file) copies
no shard and survives a kill.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dataset.object_store import s3_filesystem
from dataset.versions import read_manifest, read_version
from jobs import convert_images as convert_job
from tests.latency_proxy import LatencyProxy
from tests.s3server import s3_bucket_fixture
from tests.test_convert_images import BAD, make_tree, read_records

REPO = Path(__file__).resolve().parent.parent
s3 = s3_bucket_fixture(scope="module")
# and one run folder per conversion; dataset_info.json ... labels: its TFDS metadata (dataset.tfds_metadata)
DATASET_NAMES = [
    "_SUCCESS",
    "_rejected",
    "_versions",
    "dataset_info.json",
    "features.json",
    "image.class.label.labels.txt",
    "manifest.json",
]


@pytest.fixture(scope="module")
def raw_images(s3, tmp_path_factory):
    """The test image tree uploaded to s3://<bucket>/raw (the dangling link has no object to become)."""
    root = tmp_path_factory.mktemp("tree")
    good = make_tree(root)
    fs = s3_filesystem(s3.env())
    files = [p for p in root.rglob("*") if p.is_file()]
    fs.put([str(p) for p in files], [f"{s3.bucket}/raw/{p.relative_to(root).as_posix()}" for p in files])
    return good


@pytest.fixture
def store_env(s3, spark, monkeypatch):
    """Point this process at the server through a counting proxy; restore the shared session's worker env."""
    saved = dict(spark.sparkContext.environment)
    with LatencyProxy("127.0.0.1", s3.port) as proxy:
        for key, value in s3.env(proxy.endpoint).items():
            monkeypatch.setenv(key, value)
        yield proxy
    spark.sparkContext.environment.clear()
    spark.sparkContext.environment.update(saved)


def runs(fs, url: str) -> list[str]:
    return [n for n in names(fs, url) if n.startswith("run-")]


def names(fs, url: str) -> list[str]:
    fs.invalidate_cache()
    return sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(url, detail=False)) if fs.exists(url) else []


def download(fs, url: str, dest: Path) -> Path:
    fs.invalidate_cache()
    fs.get(url.rstrip("/") + "/", str(dest), recursive=True)
    return dest


def test_images_from_s3a_to_s3_every_file_in_a_shard_or_rejected_and_no_copy(s3, raw_images, store_env, tmp_path):
    out = f"s3://{s3.bucket}/datasets/x"
    argv = ["--input", f"s3a://{s3.bucket}/raw", "--output", out, "--num-shards", "2", "--max-reject-fraction", "0.5"]
    assert convert_job.main([*argv, "--read-concurrency", "8"]) == 0
    counted = store_env.counts()
    assert counted["copy"] == 1, counted  # shards are written once, under their final names; the report is copied

    fs = s3_filesystem()
    (run,) = runs(fs, out)
    assert names(fs, out) == [*DATASET_NAMES, run]
    shards = ["test-00000-of-00002.tfrecord", "test-00001-of-00002.tfrecord", "train-00000-of-00002.tfrecord",
              "train-00001-of-00002.tfrecord", "validation-00000-of-00001.tfrecord"]  # fmt: skip
    # each shard's record index beside it, written under its final name too (no copy)
    assert names(fs, f"{out}/{run}") == ["_files.parquet", "_rejected", *sorted(shards + [f"{s}.idx" for s in shards])]
    assert names(fs, f"{out}/_versions") == ["00000001.json"]
    local = download(fs, out, tmp_path / "x")
    records = read_records(local)
    assert set(records) == set(raw_images)
    for relpath, data in raw_images.items():  # original bytes; WebP, which training cannot decode, as lossless PNG
        stored = records[relpath]["image/encoded"]
        if relpath.endswith(".webp"):
            assert records[relpath]["image/format"] == b"png"
            assert np.array_equal(np.asarray(Image.open(io.BytesIO(stored))), np.asarray(Image.open(io.BytesIO(data))))
        else:
            assert stored == data
    rejected = [json.loads(line) for line in (local / "_rejected" / "rejected.jsonl").read_text().splitlines()]
    assert {r["path"]: r["reason"] for r in rejected} == {k: v for k, v in BAD.items() if k != "dog/dangling.jpg"}
    assert read_manifest(out).num_records == len(raw_images)


def _convert_in_child(env: dict[str, str], argv: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, **env, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    with open(log, "wb") as out:  # its own process group: the kill reaches the JVM and the Python workers too
        return subprocess.Popen(
            [sys.executable, "-m", "jobs.convert_images", *argv, "--master", "local[2]"],
            env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


@pytest.mark.slow
def test_a_killed_overwrite_leaves_the_current_version_and_the_rerun_commits_the_next_without_copies(
    s3, raw_images, store_env, tmp_path
):
    out = f"s3://{s3.bucket}/datasets/killed"
    base = ["--input", f"s3://{s3.bucket}/raw", "--output", out, "--splits", "train=1", "--max-reject-fraction", "0.5"]
    assert convert_job.main([*base, "--num-shards", "1"]) == 0  # version 1, about to be replaced
    fs = s3_filesystem()
    (first,) = runs(fs, out)
    assert names(fs, out) == [*DATASET_NAMES, first]
    version_1 = fs.cat_file(f"{out}/manifest.json")

    # The overwrite runs in its own Spark behind a slow proxy (40 ms a request) and is SIGKILLed once its first
    # shard exists: before its commit.
    with LatencyProxy("127.0.0.1", s3.port, delay_ms=40) as slow:
        child = _convert_in_child(
            s3.env(slow.endpoint), [*base, "--num-shards", "8", "--mode", "overwrite"], tmp_path / "child.log"
        )
        try:
            deadline = time.monotonic() + 240
            while not any(n.endswith("-of-00008.tfrecord") for r in runs(fs, out) for n in names(fs, f"{out}/{r}")):
                assert child.poll() is None, (tmp_path / "child.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "no shard appeared"
                time.sleep(0.05)
        finally:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(30)
    (killed,) = set(runs(fs, out)) - {first}
    assert names(fs, out) == sorted([*DATASET_NAMES, first, killed])
    assert names(fs, f"{out}/_versions") == ["00000001.json"] and fs.cat_file(f"{out}/manifest.json") == version_1
    assert read_manifest(out).num_records == len(raw_images)  # version 1: current, complete, readable
    assert set(read_records(download(fs, out, tmp_path / "v1"))) == set(raw_images)

    assert convert_job.main([*base, "--num-shards", "1"]) == 2  # --mode error: a dataset is there
    store_env.reset()
    assert convert_job.main([*base, "--num-shards", "2", "--mode", "overwrite"]) == 0
    assert store_env.counts()["copy"] == 1  # the rejected report to _rejected/; no shard
    (second,) = set(runs(fs, out)) - {first, killed}
    assert names(fs, f"{out}/_versions") == ["00000001.json", "00000002.json"]
    assert read_version(out).info.run == second and read_manifest(out).num_records == len(raw_images)
    assert [f.path for f in read_manifest(out, 1).split("train").files] == [f"{first}/train-00000-of-00001.tfrecord"]


def test_mode_error_refuses_a_dataset_and_a_foreign_folder(s3, raw_images, store_env, capsys):
    fs = s3_filesystem()
    fs.pipe(f"{s3.bucket}/datasets/foreign/notes.txt", b"not ours")
    argv = ["--input", f"s3://{s3.bucket}/raw", "--output", f"s3a://{s3.bucket}/datasets/foreign"]
    assert convert_job.main(argv) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: output s3://{s3.bucket}/datasets/foreign already exists; pass --mode overwrite to replace it or "
        "choose another --output"
    )
    assert names(fs, f"{s3.bucket}/datasets/foreign") == ["notes.txt"]


def test_read_concurrency_out_of_range_is_one_line(capsys):
    assert convert_job.main(["--input", "s3://b/raw", "--output", "s3://b/x", "--read-concurrency", "0"]) == 2
    assert capsys.readouterr().err.strip() == "error: --read-concurrency must be in 1..256, got 0"
