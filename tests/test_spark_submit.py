"""spark-submit against a real Spark standalone cluster on loopback: a master and two workers."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pyspark
import pytest

from dataset.versions import read_manifest
from jobs.convert_images import build_parser, options_from_args
from tests.images import image_bytes, write

REPO = Path(__file__).resolve().parents[1]
SPARK_HOME = Path(pyspark.__file__).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def alive_workers(web_port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/json/", timeout=2) as response:
            return sum(1 for w in json.load(response)["workers"] if w["state"] == "ALIVE")
    except OSError:
        return 0


def test_printed_command_passes_the_mode_and_the_list_prefix_to_the_job(tmp_path):
    job_args = ["--input", "s3a://lake/raw/pets", "--output", "s3a://lake/datasets/pets", "--num-shards", "64",
                "--mode", "append", "--list-prefix", "cats/2026-12-06"]  # fmt: skip
    printed = subprocess.run(
        [sys.executable, "deploy/spark-submit/submit.py", "--target", "yarn", "--job", "convert_images",
         "--dist", str(tmp_path / "dist"), "--", *job_args],
        cwd=REPO, capture_output=True, text=True, check=True,
    )  # fmt: skip
    command = shlex.split(printed.stdout)
    assert command[:5] == ["spark-submit", "--master", "yarn", "--py-files", str(tmp_path / "dist" / "tfrecordpipe.zip")]
    assert command[-len(job_args) - 1 :] == [str(REPO / "jobs" / "convert_images.py"), *job_args]
    options = options_from_args(build_parser().parse_args(job_args))  # what the job makes of them
    assert (options.mode, options.list_prefix, options.on_change) == ("append", "cats/2026-12-06", "keep")


@pytest.fixture
def cluster(tmp_path):
    """A standalone master and two 1-core workers; always stopped, also when the test fails."""
    env = dict(
        os.environ,
        SPARK_HOME=str(SPARK_HOME),
        SPARK_LOCAL_IP="127.0.0.1",
        PYSPARK_PYTHON=sys.executable,
        SPARK_LOG_DIR=str(tmp_path / "logs"),
        SPARK_WORKER_DIR=str(tmp_path / "work"),
    )
    spark_class = str(SPARK_HOME / "bin" / "spark-class")
    port, web = free_port(), free_port()
    log = open(tmp_path / "cluster.log", "w")
    commands = [
        [
            spark_class,
            "org.apache.spark.deploy.master.Master",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--webui-port",
            str(web),
        ]
    ]
    commands += [
        [
            spark_class,
            "org.apache.spark.deploy.worker.Worker",
            f"spark://127.0.0.1:{port}",
            "--host",
            "127.0.0.1",
            "--cores",
            "1",
            "--memory",
            "2g",
            "--webui-port",
            str(free_port()),
            "--work-dir",
            str(tmp_path / f"worker{i}"),
        ]
        for i in range(2)
    ]
    processes = []
    try:
        for cmd in commands:
            processes.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=log, start_new_session=True))
        deadline = time.monotonic() + 90
        while alive_workers(web) < 2:
            assert time.monotonic() < deadline, (tmp_path / "cluster.log").read_text()[-3000:]
            time.sleep(0.5)
        yield f"spark://127.0.0.1:{port}", env
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        log.close()


def submit(master: str, env: dict, job: str, *job_args: str, dist: Path) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "deploy/spark-submit/submit.py",
        "--target",
        "standalone",
        "--master",
        master,
        "--job",
        job,
        "--python",
        sys.executable,
        "--spark-submit",
        str(SPARK_HOME / "bin" / "spark-submit"),
        "--dist",
        str(dist),
        "--conf",
        "spark.executor.memory=1g",
        "--conf",
        "spark.cores.max=2",
        "--run",
        "--",
        *job_args,
    ]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_convert_and_train_submitted_to_a_standalone_cluster(cluster, tmp_path):
    master, env = cluster
    for i in range(120):
        write(tmp_path / "images", f"l{i % 2}/{i}.png", image_bytes("PNG", (16, 16), seed=i))
    data, model_dir = tmp_path / "data", tmp_path / "model"
    convert = ["--input", str(tmp_path / "images"), "--output", str(data), "--num-shards", "2", "--mode", "append"]
    converted = submit(master, env, "convert_images", *convert, dist=tmp_path / "dist")
    assert converted.returncode == 0, converted.stderr[-3000:]
    assert "Converted 120 images" in converted.stdout  # an append on a missing folder: a full conversion
    assert read_manifest(str(data)).num_records == 120
    # new images arrive: the next append converts those only, as version 2
    for i in range(120, 130):
        write(tmp_path / "images", f"l{i % 2}/{i}.png", image_bytes("PNG", (16, 16), seed=i))
    appended = submit(master, env, "convert_images", *convert, dist=tmp_path / "dist")
    assert appended.returncode == 0, appended.stderr[-3000:]
    # spark-submit's PythonRunner merges the driver's stderr into its stdout: first the TFDS line of version 2
    # (its train split spans two run folders; docs/readers.md), then the summary
    tfds_line, summary = appended.stdout.split("\n", 1)
    assert tfds_line.startswith(f"tfds: version 2 of {data}: split 'train' spans run folders run-"), tfds_line
    assert summary.startswith("Converted 10 images")
    assert "  version 2 = version 1 + 10 new records; records now: " in appended.stdout
    assert read_manifest(str(data), 1).num_records == 120 and read_manifest(str(data)).num_records == 130
    trained = submit(
        master,
        env,
        "train",
        "--data",
        str(data),
        "--model-dir",
        str(model_dir),
        "--num-proc",
        "2",
        "--max-steps",
        "10",
        "--batch-size",
        "8",
        dist=tmp_path / "dist",
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics["num_proc"] == 2 and metrics["global_step"] == 10 and metrics["export_path"]
