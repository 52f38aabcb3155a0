"""The whole pipeline on an S3-compatible server (S3Proxy): images from s3://bucket/raw converted to
s3://bucket/datasets/x, validated, trained by 2 Horovod processes with the model_dir on the server, resumed,
predicted from the server's export; a table converted from Parquet on s3a://.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from dataset.object_store import s3_filesystem, s3fs_storage_options
from dataset.tfds_metadata import is_tfds_file
from dataset.versions import read_manifest, read_version
from demo.data import SHAPES, generate_tree
from jobs import convert_images, predict, train, validate
from tests.latency_proxy import LatencyProxy
from tests.s3server import s3_bucket_fixture

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parent.parent
s3 = s3_bucket_fixture(scope="module")
STEPS = 120


@pytest.fixture
def store_env(s3, spark, monkeypatch):
    """This process (and the Horovod ranks and Python workers it starts) pointed at the server."""
    saved = dict(spark.sparkContext.environment)
    for key, value in s3.env().items():
        monkeypatch.setenv(key, value)
    yield s3_filesystem()
    spark.sparkContext.environment.clear()
    spark.sparkContext.environment.update(saved)


def test_images_converted_validated_trained_resumed_and_predicted_on_the_store(s3, store_env, tmp_path, capsys):
    fs = store_env
    generate_tree(tmp_path / "images", per_label=100)  # 4 shapes x 100 PNGs of 32x32
    files = sorted(p for p in (tmp_path / "images").rglob("*.png"))
    fs.put([str(p) for p in files], [f"{s3.bucket}/raw/{p.relative_to(tmp_path / 'images').as_posix()}" for p in files])
    data, model_dir = f"s3://{s3.bucket}/datasets/x", f"s3://{s3.bucket}/models/m"

    assert convert_images.main(["--input", f"s3://{s3.bucket}/raw", "--output", data, "--num-shards", "2"]) == 0
    manifest = read_manifest(data)
    assert manifest.num_records == 400 and sorted(manifest.labels) == sorted(SHAPES)
    capsys.readouterr()

    assert validate.main(["--data", data]) == 0
    assert capsys.readouterr().out.startswith(f"OK {data}: 400 records in 6 shards")

    argv = ["--data", data, "--model-dir", model_dir, "--num-proc", "2", "--batch-size", "16"]
    argv += ["--eval-split", "test", "--checkpoint-steps", "40", "--summary-steps", "10"]
    assert train.main([*argv, "--max-steps", str(STEPS)]) == 0
    metrics = json.loads(fs.cat(f"{model_dir}/metrics.json"))
    assert metrics["global_step"] == STEPS and metrics["steps_run"] == STEPS and metrics["model_dir"] == model_dir
    assert metrics["eval"]["accuracy"] >= 0.6, metrics["eval"]  # 4 labels: chance is 0.25
    export = metrics["export_path"]
    assert export.startswith(f"{model_dir}/export/") and fs.exists(f"{export}/saved_model.pb")
    stored = sorted(p.rsplit("/", 1)[-1] for p in fs.ls(model_dir, detail=False))
    assert "checkpoint" in stored and f"model.ckpt-{STEPS}.index" in stored and "graph.pbtxt" in stored

    assert train.main([*argv, "--max-steps", str(STEPS + 10), "--no-export"]) == 0  # resumed from the store
    fs.invalidate_cache()
    resumed = json.loads(fs.cat(f"{model_dir}/metrics.json"))
    assert resumed["steps_run"] == 10 and resumed["global_step"] == STEPS + 10
    assert fs.exists(f"{model_dir}/model.ckpt-{STEPS + 10}.index")
    capsys.readouterr()

    out = tmp_path / "predictions"
    assert predict.main(["--model", model_dir, "--data", data, "--split", "test", "--output", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    version = read_version(data)
    assert metrics["data"] == {"data": data, "version": 1, "manifest_sha256": version.sha256}  # lineage
    assert json.loads(fs.cat(f"{export}/assets.extra/lineage.json")) == metrics["data"]
    assert version.sha256 == hashlib.sha256(fs.cat(f"{data}/manifest.json")).hexdigest()
    assert printed[0] == f"model {export}: trained on {data} version 1 (manifest sha256 {version.sha256})"
    assert printed[1].startswith(f"Wrote {manifest.splits['test'].num_records} predictions")
    rows = pd.read_parquet(out)
    assert len(rows) == manifest.splits["test"].num_records and rows["error"].isna().all()
    assert (rows["predicted_label"] == rows["true_label"]).mean() == pytest.approx(
        metrics["eval"]["accuracy"], abs=1e-6
    )


def test_a_table_from_parquet_on_s3a_to_the_store(s3, store_env, tmp_path):
    rows = pd.DataFrame({"id": range(200), "x": [float(i % 7) for i in range(200)], "y": [i % 2 for i in range(200)]})
    rows.to_parquet(f"s3://{s3.bucket}/lake/t/part-0.parquet", storage_options=s3fs_storage_options())
    out = f"s3://{s3.bucket}/datasets/t"
    argv = ["--input", f"s3a://{s3.bucket}/lake/t", "--format", "parquet", "--label", "y", "--key", "id"]
    argv += ["--output", out, "--num-shards", "2", "--master", "local[2]"]
    with LatencyProxy("127.0.0.1", s3.port) as proxy:  # counts the requests by kind
        env = {**os.environ, **s3.env(proxy.endpoint)}
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
        # S3A needs its jars when the JVM starts: the shared session has none, so the job runs in its own Spark
        done = subprocess.run(
            [sys.executable, "-m", "jobs.convert_table", *argv], env=env, cwd=REPO, capture_output=True, text=True
        )
        counted = proxy.counts()
    assert done.returncode == 0, done.stderr[-3000:]
    print(f"table conversion on the store: {counted}")
    # Spark's task commit moves each part file into the output (algorithm 2), then the writer names it as its
    # shard by another move (conversion/tables/shards.py): two copies per shard; the empty rejected report is
    # written as files (no task commit), then copied (its part file and _SUCCESS) to the dataset's _rejected/
    assert counted["copy"] == 2 * 6 + 2, counted
    manifest = read_manifest(out)
    assert manifest.num_records == 200 and manifest.kind == "table"
    names = sorted(p.rsplit("/", 1)[-1] for p in store_env.ls(out, detail=False))
    run = next(n for n in names if n.startswith("run-"))
    assert [n for n in names if not is_tfds_file(n)] == ["_SUCCESS", "_rejected", "_versions", "manifest.json", run]
    assert {"dataset_info.json", "features.json"} <= set(names)  # the TFDS metadata of version 1, at the root
    shards = sorted(p.rsplit("/", 1)[-1] for p in store_env.ls(f"{out}/{run}", detail=False))
    assert shards == ["_files.parquet", "_rejected", "_stats.parquet", *sorted(
        f"{split}-0000{i}-of-00002.tfrecord{idx}"
        for split in ("test", "train", "validation") for i in range(2) for idx in ("", ".idx")
    )]  # fmt: skip
