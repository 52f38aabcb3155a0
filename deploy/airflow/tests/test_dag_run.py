"""The Spark DAG run for real with `airflow dags test` (deploy/airflow/demo.py): local[2] Spark, the project's .venv.

Each task is a spark-submit of a job; the run's outputs are checked task by task, and a failing job
fails the run with the job's one-line error in its task's log.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import demo  # noqa: E402  (deploy/airflow/demo.py: runs the DAG, reads states and task logs back)

PROJECT_PYTHON = os.environ.get("TFRECORDPIPE_PYTHON", str(demo.ROOT / ".venv" / "bin" / "python"))
DAY = demo.LOGICAL_DATE.replace("-", "")


@pytest.fixture(scope="module")
def project_python() -> str:
    if not (Path(PROJECT_PYTHON).parent / "spark-submit").exists():
        pytest.fail(f"{PROJECT_PYTHON} and its spark-submit are needed: run `make setup` (make test-airflow does)")
    return PROJECT_PYTHON


@pytest.mark.slow
def test_spark_dag_runs_end_to_end_and_every_task_leaves_its_output(tmp_path, project_python):
    images = tmp_path / "digits"
    assert demo.write_images(images, project_python) == 1797
    conf = {"images": str(images), "dataset": str(tmp_path / "dataset"), "model_dir": str(tmp_path / "model"),
            "predictions": str(tmp_path / "predictions"), "num_shards": 2, "num_proc": 2, "epochs": 3}
    result = demo.run_dag(conf, project_python, tmp_path / "airflow.log")  # the default mode: append

    assert result.returncode == 0, result.log_file.read_text()[-5000:]
    assert result.states == dict.fromkeys(demo.TASKS, "success")
    # convert: an append on a missing dataset is a full conversion, version 1
    dataset = tmp_path / "dataset"
    assert (dataset / "_SUCCESS").exists()
    manifest = json.loads((dataset / "manifest.json").read_text())
    assert manifest["num_records"] == 1797 and len(manifest["splits"]["train"]["files"]) == 2
    assert result.summaries["convert"][0].startswith(f"Converted 1797 images into {dataset} in ")
    assert demo.files_converted(result) == 1797
    assert demo.current_version(dataset, project_python).split()[:5] == ["1", manifest["version"]["committed_at"],
                                                                           "parent", "-", "convert"]
    # validate: its report in the task log
    assert result.summaries["validate"][0].startswith(f"OK {dataset}: 1797 records in 6 shards")
    assert not result.errors
    # train: metrics and a SavedModel export in the one model dir every run continues in
    model = tmp_path / "model"
    metrics = json.loads((model / "metrics.json").read_text())
    assert metrics["num_proc"] == 2
    assert [(e["data"]["data"], e["data"]["version"]) for e in metrics["trained_on"]] == [(str(dataset), 1)]
    assert (Path(metrics["export_path"]) / "saved_model.pb").exists()
    assert Path(metrics["export_path"]).parent == model / "export"
    # predict: Parquet of the test split, and the accuracy the job measured, per run's day
    predictions = tmp_path / "predictions" / DAY
    assert (predictions / "_SUCCESS").exists() and list(predictions.glob("part-*.parquet"))
    assert result.summaries["predict"][0] == (f"model {metrics['export_path']}: trained on {dataset} version 1 "
                                              f"(manifest sha256 {metrics['data']['manifest_sha256']})")
    test_count = manifest["splits"]["test"]["num_records"]
    assert result.predictions_line.startswith(f"Wrote {test_count} predictions to {predictions};")
    assert result.accuracy > 0.8  # 0.96 and 0.99 measured after 3 epochs


@pytest.mark.slow
def test_a_failing_job_fails_the_run_with_its_error_in_the_task_log(tmp_path, project_python):
    conf = {"images": str(tmp_path / "no-such-images"), "dataset": str(tmp_path / "dataset")}
    result = demo.run_dag(conf, project_python, tmp_path / "airflow.log", retries=0)

    assert result.returncode != 0
    assert result.states == {"convert": "failed", "validate": "upstream_failed", "train": "upstream_failed",
                             "predict": "upstream_failed"}
    assert result.errors["convert"].startswith(f"error: input {tmp_path / 'no-such-images'} does not exist")
    assert "Error code is: 2" in result.logs["convert"]
    assert not (tmp_path / "dataset").exists()
