"""The jobs on an S3-compatible server (S3Proxy on 127.0.0.1): the standard AWS variables reach every component,
`s3://` and `s3a://` both work, and the in-place commit (conversion/in_place.py) copies nothing and survives a kill.
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

from dataset.errors import DatasetError
from dataset.manifest import read_manifest
from dataset.object_store import s3_filesystem
from jobs import convert_images as convert_job
from tests.latency_proxy import LatencyProxy
from tests.s3server import s3_server_fixture
from tests.test_convert_images import BAD, make_tree, read_records

REPO = Path(__file__).resolve().parent.parent
s3 = s3_server_fixture(scope="module")
DATASET_NAMES = ["_SUCCESS", "_rejected", "manifest.json", "train-00000-of-00001.tfrecord"]


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
    assert counted["copy"] == 0, counted  # shards are written once, under their final names

    fs = s3_filesystem()
    assert names(fs, out) == ["_SUCCESS", "_rejected", "manifest.json", "test-00000-of-00002.tfrecord",
                              "test-00001-of-00002.tfrecord", "train-00000-of-00002.tfrecord",
                              "train-00001-of-00002.tfrecord", "validation-00000-of-00001.tfrecord"]  # fmt: skip
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
def test_a_killed_overwrite_leaves_no_dataset_and_the_rerun_completes_without_copies(
    s3, raw_images, store_env, tmp_path
):
    out = f"s3://{s3.bucket}/datasets/killed"
    base = ["--input", f"s3://{s3.bucket}/raw", "--output", out, "--splits", "train=1", "--max-reject-fraction", "0.5"]
    assert convert_job.main([*base, "--num-shards", "1"]) == 0  # a finished dataset, about to be replaced
    fs = s3_filesystem()
    assert names(fs, out) == DATASET_NAMES

    # The overwrite runs in its own Spark behind a slow proxy (40 ms a request) and is SIGKILLed once its first
    # shard exists: before its manifest and _SUCCESS.
    with LatencyProxy("127.0.0.1", s3.port, delay_ms=40) as slow:
        child = _convert_in_child(
            s3.env(slow.endpoint), [*base, "--num-shards", "8", "--mode", "overwrite"], tmp_path / "child.log"
        )
        try:
            deadline = time.monotonic() + 240
            while not any(n.endswith(".tfrecord") and "-of-00008" in n for n in names(fs, out)):
                assert child.poll() is None, (tmp_path / "child.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "no shard appeared"
                time.sleep(0.05)
        finally:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(30)
    left = names(fs, out)
    assert "_CONVERTING" in left and "_SUCCESS" not in left and "manifest.json" not in left, left
    assert not [n for n in left if "-of-00001" in n], left  # the old dataset's shards are gone
    with pytest.raises(DatasetError, match="not a finished conversion"):
        read_manifest(out)

    store_env.reset()
    assert convert_job.main([*base, "--num-shards", "1"]) == 0  # --mode error: leftovers of a killed run are ours
    assert store_env.counts()["copy"] == 0
    assert names(fs, out) == DATASET_NAMES
    assert read_manifest(out).num_records == len(raw_images)


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
