"""The Databricks notebooks run against local Spark with a stand-in dbutils; the bundle points at them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dataset.manifest import read_manifest
from jobs.tfrecord_jar import TFRECORD_PACKAGE
from tests.conftest import needs_tfrecord_jar

DEPLOY = Path(__file__).resolve().parents[1] / "deploy" / "databricks"


class Widgets:
    """The part of `dbutils.widgets` the notebooks use: define with a default, read (overridden) values."""

    def __init__(self, values: dict[str, str]) -> None:
        self._values = values
        self.defined: dict[str, str] = {}

    def text(self, name: str, default: str, label: str | None = None) -> None:
        self.defined[name] = default

    def dropdown(self, name: str, default: str, choices: list[str], label: str | None = None) -> None:
        assert default in choices
        self.defined[name] = default

    def get(self, name: str) -> str:
        if name not in self.defined:
            raise ValueError(f"widget {name!r} was never defined")
        return self._values.get(name, self.defined[name])


class DBUtils:
    def __init__(self, values: dict[str, str]) -> None:
        self.widgets = Widgets(values)


class Display:
    """Databricks' `display`: here it keeps what it was shown (the DataFrames collected)."""

    def __init__(self) -> None:
        self.shown: list = []

    def __call__(self, frame) -> None:
        self.shown.append((frame.schema, frame.collect()))


def run_notebook(name: str, spark, values: dict[str, str]) -> dict:
    path = DEPLOY / "notebooks" / name
    source = path.read_text()
    assert source.startswith("# Databricks notebook source\n") and "# COMMAND ----------" in source
    namespace = {"spark": spark, "dbutils": DBUtils(values), "display": Display()}
    exec(compile(source, str(path), "exec"), namespace)
    assert set(values) <= set(namespace["dbutils"].widgets.defined)  # every parameter is a widget
    return namespace


@pytest.mark.slow
@needs_tfrecord_jar
def test_notebooks_convert_train_and_predict(spark, tmp_path):
    from demo.data import generate_tree

    generate_tree(tmp_path / "images", per_label=40)
    data, model_dir, out = tmp_path / "data", tmp_path / "model", tmp_path / "predictions"
    converted = run_notebook(
        "convert.py", spark, {"input": str(tmp_path / "images"), "output": str(data), "num_shards": "2"}
    )
    manifest = read_manifest(str(data))
    assert manifest.num_records == 160
    [(schema, rows)] = converted["display"].shown  # the train split, read back through spark-tfrecord
    assert schema == manifest.spark_schema() and len(rows) == manifest.splits["train"].num_records
    assert {r["image/class/text"] for r in rows} == set(manifest.labels)
    trained = run_notebook(
        "train.py",
        spark,
        {"data": str(data), "model_dir": str(model_dir), "num_proc": "2", "epochs": "2", "batch_size": "8"},
    )
    assert trained["result"].metrics["num_proc"] == 2 and (model_dir / "metrics.json").exists()
    run_notebook("predict.py", spark, {"model_dir": str(model_dir), "data": str(data), "output": str(out)})
    assert spark.read.parquet(str(out)).count() == read_manifest(str(data)).splits["test"].num_records


def test_bundle_parses_and_its_tasks_point_at_notebooks():
    bundle = yaml.safe_load((DEPLOY / "databricks.yml").read_text())
    tasks = bundle["resources"]["jobs"]["tfrecordpipe"]["tasks"]
    assert [t["task_key"] for t in tasks] == ["convert", "train", "predict"]
    assert [t.get("depends_on", [{}])[0].get("task_key") for t in tasks] == [None, "convert", "train"]
    for task in tasks:
        notebook = DEPLOY / task["notebook_task"]["notebook_path"]
        assert notebook.is_file(), notebook
        widgets = run_widgets_only(notebook)
        assert set(task["notebook_task"]["base_parameters"]) <= widgets
        # a notebook reading format("tfrecord") has spark-tfrecord as the task's Maven library
        maven = [lib["maven"]["coordinates"] for lib in task["libraries"] if "maven" in lib]
        assert maven == ([TFRECORD_PACKAGE] if "read_split(" in notebook.read_text() else []), task["task_key"]
    assert [t["task_key"] for t in tasks if any("maven" in lib for lib in t["libraries"])] == ["convert"]


def run_widgets_only(notebook: Path) -> set[str]:
    """The widget names a notebook defines (its first code cell)."""
    cells = notebook.read_text().split("# COMMAND ----------")
    dbutils = DBUtils({})
    exec(compile(cells[1], str(notebook), "exec"), {"dbutils": dbutils})
    return set(dbutils.widgets.defined)
