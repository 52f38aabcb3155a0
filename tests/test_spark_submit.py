"""spark-submit against a real Spark standalone cluster on loopback: a master and two workers."""

from __future__ import annotations

import json
import os
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
from tests.images import image_bytes, write

REPO = Path(__file__).resolve().parents[1]
SPARK_HOME = Path(pyspark.__file__).parent
pytestmark = pytest.mark.slow


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


def test_convert_and_train_submitted_to_a_standalone_cluster(cluster, tmp_path):
    master, env = cluster
    for i in range(120):
        write(tmp_path / "images", f"l{i % 2}/{i}.png", image_bytes("PNG", (16, 16), seed=i))
    data, model_dir = tmp_path / "data", tmp_path / "model"
    converted = submit(
        master,
        env,
        "convert_images",
        "--input",
        str(tmp_path / "images"),
        "--output",
        str(data),
        "--num-shards",
        "2",
        dist=tmp_path / "dist",
    )
    assert converted.returncode == 0, converted.stderr[-3000:]
    assert "Converted 120 images" in converted.stdout
    assert read_manifest(str(data)).num_records == 120
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
