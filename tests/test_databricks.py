"""The Databricks notebooks run against local Spark with a stand-in dbutils; the bundle points at them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dataset.errors import OptionError
from dataset.versions import read_manifest
from jobs.tfrecord_jar import tfrecord_package
from tests.conftest import needs_tfrecord_jar
from tests.example_reader import file_records, parse_example, parsed_like_tf

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
@pytest.mark.needs_tf  # trains
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


def filenames(data: Path, version: int) -> set[str]:
    """The image/filename of every record version `version` lists, read from its shards."""
    manifest = read_manifest(str(data), version)
    return {
        parse_example(record)["image/filename"][0].decode()
        for split in manifest.splits.values()
        for shard in split.files
        for record in file_records(data / shard.path)
    }


@needs_tfrecord_jar
def test_convert_notebook_appends_what_is_new_with_mode_and_list_prefix(spark, tmp_path):
    from demo.data import generate_tree

    images, arriving, data = tmp_path / "images", tmp_path / "arriving", tmp_path / "data"
    generate_tree(images, per_label=5)  # 4 labels x 5
    values = {"input": str(images), "output": str(data), "num_shards": "1", "mode": "append"}
    first = run_notebook("convert.py", spark, values)  # append on a missing folder: a full conversion
    assert first["summary"].version == 1 and read_manifest(str(data)).num_records == 20
    v1 = filenames(data, 1)
    assert len(v1) == 20 and all(name.count("/") == 1 for name in v1)
    # new images arrive in date folders under two labels
    generate_tree(arriving, per_label=2)
    for label in ("circle", "square"):
        (images / label / "2026-01-03").mkdir()
        for path in sorted((arriving / label).glob("*.png")):
            path.rename(images / label / "2026-01-03" / f"new-{path.name}")
    circle = {f"circle/2026-01-03/new-000{i}.png" for i in range(2)}
    square = {f"square/2026-01-03/new-000{i}.png" for i in range(2)}
    # list_prefix: only circle's date folder is listed and converted
    second = run_notebook("convert.py", spark, {**values, "list_prefix": "circle/2026-01-03"})
    assert second["summary"].version == 2 and sum(second["summary"].records.values()) == 2
    assert filenames(data, 2) == v1 | circle
    # no prefix: the whole root is listed, and only square's new files are new
    third = run_notebook("convert.py", spark, values)
    assert third["summary"].version == 3 and filenames(data, 3) == v1 | circle | square
    assert filenames(data, 1) == v1  # a version pin still reads its own records
    # nothing new: one line, nothing committed
    fourth = run_notebook("convert.py", spark, values)
    assert fourth["summary"].version is None
    assert fourth["summary"].text() == f"nothing new under {images} since version 3; nothing committed"
    assert read_manifest(str(data)).num_records == 24
    # the append-only widgets are refused, in one line, with another mode
    with pytest.raises(OptionError, match=r"^--list-prefix apply to --mode append only"):
        run_notebook("convert.py", spark, {**values, "mode": "overwrite", "list_prefix": "circle/2026-01-03"})


TFRECORD_NOTEBOOK = ("read_split(", "convert_table(", "export_parquet(")  # what reads or writes format("tfrecord")


def bundle_jobs() -> dict[str, dict]:
    """target name -> its one job (the bundle defines jobs per target only)."""
    bundle = yaml.safe_load((DEPLOY / "databricks.yml").read_text())
    assert "resources" not in bundle  # a job at the top level would be deployed by every target
    assert [name for name, target in bundle["targets"].items() if target.get("default")] == ["dev"]
    jobs = {}
    for name, target in bundle["targets"].items():
        [job] = target["resources"]["jobs"].values()
        jobs[name] = job
    return jobs


def test_bundle_parses_and_its_tasks_point_at_notebooks():
    jobs = bundle_jobs()
    assert sorted(jobs) == ["dev", "spark4"]
    runtimes = {name: [c["new_cluster"]["spark_version"] for c in job["job_clusters"]] for name, job in jobs.items()}
    assert runtimes == {"dev": ["14.3.x-cpu-ml-scala2.12"], "spark4": ["17.3.x-scala2.13"]}
    tasks = {name: job["tasks"] for name, job in jobs.items()}
    # 14.3 LTS ML: convert -> train -> predict; 17.3 LTS (Spark 4): conversion only, tables and export included
    assert [(t["task_key"], t.get("depends_on", [{}])[0].get("task_key")) for t in tasks["dev"]] == [
        ("convert", None),
        ("train", "convert"),
        ("predict", "train"),
    ]
    assert [(t["task_key"], t.get("depends_on", [{}])[0].get("task_key")) for t in tasks["spark4"]] == [
        ("convert_images", None),
        ("convert_table", None),
        ("export_parquet", "convert_table"),
    ]
    maven_tasks = {}
    for name, job in jobs.items():
        scala = runtimes[name][0].rsplit("scala", 1)[1]
        for task in job["tasks"]:
            notebook = DEPLOY / task["notebook_task"]["notebook_path"]
            assert notebook.is_file(), notebook
            assert set(task["notebook_task"]["base_parameters"]) <= run_widgets_only(notebook)
            assert {"whl": "../../dist/*.whl"} in task["libraries"]
            # a notebook reading or writing format("tfrecord") has spark-tfrecord for the cluster's Scala
            maven = [lib["maven"]["coordinates"] for lib in task["libraries"] if "maven" in lib]
            uses_tfrecord = any(call in notebook.read_text() for call in TFRECORD_NOTEBOOK)
            assert maven == ([tfrecord_package(scala)] if uses_tfrecord else []), (name, task["task_key"])
            if maven:
                maven_tasks.setdefault(name, []).append(task["task_key"])
    assert maven_tasks == {"dev": ["convert"], "spark4": ["convert_images", "convert_table", "export_parquet"]}
    # the image conversions of the job append (a run adds what is new); the others take the notebook's default
    modes = {
        (name, task["task_key"]): task["notebook_task"]["base_parameters"].get("mode")
        for name, job in jobs.items()
        for task in job["tasks"]
    }
    assert {key: mode for key, mode in modes.items() if mode} == {
        ("dev", "convert"): "append",
        ("spark4", "convert_images"): "append",
    }


@needs_tfrecord_jar
def test_table_and_export_notebooks(spark, tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text("id,x,label\n" + "".join(f"{i},{i % 5},{'ab'[i % 2]}\n" for i in range(40)))
    data, out = tmp_path / "data", tmp_path / "parquet"
    values = {"input": str(csv), "label": "label", "key": "id", "output": str(data), "num_shards": "2"}
    converted = run_notebook("convert_table.py", spark, values)
    manifest = read_manifest(str(data))
    assert converted["summary"].records == {k: v.num_records for k, v in manifest.splits.items()}
    assert manifest.num_records == 40 and manifest.labels == ("a", "b")
    run_notebook("export_parquet.py", spark, {"data": str(data), "output": str(out)})
    rows = spark.read.parquet(str(out)).collect()
    assert sorted((r["id"], r["x"], r["label"], r["split"]) for r in rows) == sorted(
        (int(i), int(i) % 5, "ab"[int(i) % 2], split)
        for split, info in manifest.splits.items()
        for i in _keys(data, split)
    )


def _keys(data: Path, split: str) -> list[int]:
    """The keys of a split's records, by the independent reader."""
    return [row["id"] for row in parsed_like_tf(data, split)]


def run_widgets_only(notebook: Path) -> set[str]:
    """The widget names a notebook defines (its first code cell)."""
    cells = notebook.read_text().split("# COMMAND ----------")
    dbutils = DBUtils({})
    exec(compile(cells[1], str(notebook), "exec"), {"dbutils": dbutils})
    return set(dbutils.widgets.defined)
