"""The spark-submit entry points as users run them: `python jobs/....py` in its own process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dataset.errors import DatasetError
from dataset.versions import read_manifest
from tests.images import image_bytes, write

REPO = Path(__file__).resolve().parents[1]


def run_job(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)


def test_help_documents_every_option():
    result = run_job("jobs/convert_images.py", "--help")
    assert result.returncode == 0
    for option in (
        "--input",
        "--output",
        "--splits",
        "--split-from-folders",
        "--labels",
        "--num-shards",
        "--target-shard-mb",
        "--compression",
        "--mode",
        "--verify",
        "--max-bytes",
        "--resize",
        "--reencode",
        "--jpeg-quality",
        "--max-reject-fraction",
        "--master",
        "--conf",
        "--jars",
    ):
        assert option in result.stdout


def test_bad_option_value_is_one_line_and_non_zero(tmp_path):
    result = run_job(
        "jobs/convert_images.py", "--input", str(tmp_path), "--output", str(tmp_path / "o"), "--splits", "train=0.5"
    )
    assert result.returncode == 2
    assert result.stderr == "error: --splits fractions add up to 0.5, not 1; e.g. train=0.8,validation=0.1,test=0.1\n"


@pytest.mark.slow
def test_missing_input_fails_with_one_clear_line(tmp_path):
    result = run_job(
        "jobs/convert_images.py",
        "--input",
        str(tmp_path / "nope"),
        "--output",
        str(tmp_path / "o"),
        "--master",
        "local[1]",
    )
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: input {tmp_path / 'nope'} does not exist or is not a folder; pass the root of the label folders"
    ]


@pytest.mark.slow
def test_killed_conversion_leaves_nothing_for_training_and_a_rerun_completes(tmp_path):
    root = tmp_path / "in"
    for i in range(600):
        write(root, f"l{i % 3}/{i}.png", image_bytes("PNG", (96, 96), seed=i))
    out = tmp_path / "out"
    args = [
        "jobs/convert_images.py",
        "--input",
        str(root),
        "--output",
        str(out),
        "--num-shards",
        "1",
        "--verify",
        "full",
        "--resize",
        "64x64",
        "--reencode",
        "png",
        "--master",
        "local[1]",
    ]
    driver = subprocess.Popen(
        [sys.executable, *args], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob("out/run-*/*.tfrecord")):
        assert driver.poll() is None, "the conversion ended before it could be killed"
        assert time.monotonic() < deadline, "no shard was being written after 120 s"
        time.sleep(0.05)
    os.killpg(driver.pid, signal.SIGKILL)  # the driver and the Spark JVM it started
    driver.wait(timeout=30)
    (killed,) = out.iterdir()  # the killed run's folder, which no version lists: no dataset where training looks
    assert killed.name.startswith("run-")
    with pytest.raises(DatasetError, match="not a finished conversion"):
        read_manifest(str(out))
    result = run_job(*args)  # --mode error: a folder holding only runs that never committed is no dataset
    assert result.returncode == 0, result.stderr[-2000:]
    assert read_manifest(str(out)).num_records == 600
    vacuum = run_job("jobs/versions.py", "--data", str(out), "--vacuum", "--min-age-hours", "0", "--yes")
    assert vacuum.returncode == 0, vacuum.stderr
    assert not killed.exists() and len(list(out.glob("run-*"))) == 1
    assert read_manifest(str(out)).num_records == 600


@pytest.mark.slow
def test_killed_training_resumes_from_its_last_checkpoint(shapes_dataset, tmp_path):
    model_dir = tmp_path / "model"
    args = [
        "jobs/train.py",
        "--data",
        str(shapes_dataset),
        "--model-dir",
        str(model_dir),
        "--num-proc",
        "2",
        "--max-steps",
        "200",
        "--checkpoint-steps",
        "20",
        "--batch-size",
        "16",
        "--master",
        "local[2]",
        "--no-export",
    ]
    driver = subprocess.Popen(
        [sys.executable, *args], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 180
    while not [p for p in model_dir.glob("model.ckpt-*.index") if p.name != "model.ckpt-0.index"]:
        assert driver.poll() is None, "training ended before it could be killed"
        assert time.monotonic() < deadline, "no checkpoint after 180 s"
        time.sleep(0.2)
    os.killpg(driver.pid, signal.SIGKILL)  # the driver, its Spark JVM and the Horovod processes
    driver.wait(timeout=30)
    time.sleep(2)
    last = max(int(p.name.split("-")[1].split(".")[0]) for p in model_dir.glob("model.ckpt-*.index"))
    assert 20 <= last < 200 and not (model_dir / "metrics.json").exists()
    result = run_job(*args, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics["global_step"] == 200 and metrics["steps_run"] == 200 - last
