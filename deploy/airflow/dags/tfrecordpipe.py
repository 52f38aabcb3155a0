"""Airflow DAGs that run the jobs: convert → validate → train → predict.

`tfrecordpipe_spark` submits `jobs/*.py` with SparkSubmitOperator (connection `spark_default`);
`tfrecordpipe_table` does the same for a table (CSV/Parquet/JSON/ORC files, reader options as a list of
`KEY=VALUE`); `tfrecordpipe_databricks` runs the Databricks job the bundle in deploy/databricks defines.
Every parameter is checked against its allowed values (type, pattern, range) when the run is
triggered, before anything reaches a command line. The DAG file holds no pipeline logic.

Each daily run covers one data interval (the day before the run; `ds` is that day) and converts
incrementally: `--mode append` adds the files that are new since the dataset's current version as
a new version, and `train` continues in one model dir from its checkpoint on that version. Where new
images land in date folders, `list_prefix` (off by default) lists only the interval's folder.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.providers.databricks.operators.databricks import DatabricksRunNowOperator
from airflow.sdk import DAG, Param
from airflow.timetables.interval import CronDataIntervalTimetable

PROJECT = os.environ.get("TFRECORDPIPE_HOME", "/opt/tfrecordpipe")
PATH = r"^[A-Za-z0-9_:/.\-]+$"  # URLs and paths only: no spaces, quotes or shell characters
# A folder relative to the image root: no leading /, no `..`; {ds} and {ds_nodash} the only braces.
PREFIX = r"^(?!/)(?!.*\.\.)(?:[A-Za-z0-9_=/.\-*]|\{ds\}|\{ds_nodash\})*$"
MODES = ["append", "overwrite", "error"]
MODES_TEXT = ("append: convert only the files new since the current version, as a new version (on a missing "
              "dataset: a full conversion, version 1); overwrite: a full conversion as a new version; error: refuse "
              "when the dataset exists")
PARAMS = {
    "images": Param("/data/raw/images", type="string", pattern=PATH, description="image root, ROOT/<label>/..."),
    "mode": Param("append", type="string", enum=MODES, description=MODES_TEXT),
    "list_prefix": Param("", type="string", pattern=PREFIX, maxLength=256,
                         description="--mode append: list only this folder under the image root, relative to it "
                                     "(e.g. */{ds}: the day's folder in every label folder, {ds} the run's day "
                                     "as YYYY-MM-DD, {ds_nodash} as YYYYMMDD); empty (default): list the whole root"),
    "dataset": Param("/data/datasets/images", type="string", pattern=PATH),
    "model_dir": Param("/data/models/images", type="string", pattern=PATH),
    "predictions": Param("/data/predictions/images", type="string", pattern=PATH),
    "num_shards": Param(16, type="integer", minimum=1, maximum=4096),
    "num_proc": Param(2, type="integer", minimum=1, maximum=512),
    "epochs": Param(5, type="number", exclusiveMinimum=0, maximum=1000),
    "split": Param("test", type="string", enum=["train", "validation", "test"]),
}
# Local runs (`make airflow-demo`, the end-to-end test) set TFRECORDPIPE_PY_FILES="" when the
# project is installed in the Spark Python environment, and TFRECORDPIPE_RETRIES=0 to fail at once.
PY_FILES = os.environ.get("TFRECORDPIPE_PY_FILES", f"{PROJECT}/dist/tfrecordpipe.zip") or None
RETRIES = int(os.environ.get("TFRECORDPIPE_RETRIES", "2"))
DEFAULT_ARGS = {"owner": "ml-platform", "retries": RETRIES, "retry_delay": timedelta(minutes=5)}
# Daily data intervals: the run after midnight covers the day before, and its `ds` is that day (Airflow 3's
# plain "@daily" would date the run by the day it starts). One run at a time: appends build on each other.
SCHEDULE = {"schedule": CronDataIntervalTimetable("@daily", timezone="UTC"), "start_date": datetime(2026, 1, 1),
            "catchup": False, "max_active_runs": 1, "default_args": DEFAULT_ARGS, "tags": ["tfrecordpipe"]}
CONF = {"spark.task.maxFailures": "4", "spark.sql.execution.arrow.maxRecordsPerBatch": "256"}
# A Spark reader option: a name, then a value without spaces or shell characters (e.g. sep=\t, comment=#).
READ_OPTION = r"^[A-Za-z][A-Za-z0-9]*=[^\s$`;|&<>(){}'\"]{0,32}$"
TABLE_PARAMS = {
    "table": Param("/data/raw/table.csv", type="string", pattern=PATH, description="table file or folder"),
    "format": Param("csv", type="string", enum=["csv", "parquet", "json", "orc"]),
    "label": Param("label", type="string", pattern=r"^[A-Za-z0-9_.\- ]{1,128}$", description="the label column"),
    "read_options": Param([], type="array", items={"type": "string", "pattern": READ_OPTION}, maxItems=32,
                          description="Spark reader options, KEY=VALUE each, e.g. sep=\\t, encoding=latin1"),
    "dataset": Param("/data/datasets/table", type="string", pattern=PATH),
    # overwrite: `table` may be one file, rewritten in place (an append keeps a changed file's rows as they
    # were); append when `table` is a folder new files land in
    "mode": Param("overwrite", type="string", enum=MODES, description=MODES_TEXT + " (append: a folder new files "
                  "land in; a file changed in place keeps its old rows)"),
    "model_dir": Param("/data/models/table", type="string", pattern=PATH),
    "predictions": Param("/data/predictions/table", type="string", pattern=PATH),
    **{name: PARAMS[name] for name in ("num_shards", "num_proc", "epochs", "split")},
}


def spark_job(task_id: str, job: str, args: list[str]) -> SparkSubmitOperator:
    """One `spark-submit jobs/<job>.py args` task; the project zip ships with --py-files (when set)."""
    return SparkSubmitOperator(
        task_id=task_id,
        application=f"{PROJECT}/jobs/{job}.py",
        application_args=args,
        py_files=PY_FILES,
        conf=CONF,
        name=f"tfrecordpipe-{task_id}",
        conn_id="spark_default",
    )


class SparkSubmitWithRunArgs(SparkSubmitOperator):
    """spark-submit whose arguments end with those `run_args(context)` gives: flags whose presence or number
    is known only at run time (one template renders one argument, never none or several)."""

    def __init__(self, *, run_args: Callable[[Any], list[str]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._templates = list(self.application_args)  # rendering again starts from them, not from the last result
        self._run_args = run_args

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        self.application_args = list(self._templates)
        super().render_template_fields(context, jinja_env)
        self.application_args = [*self.application_args, *self._run_args(context)]


def read_option_args(context: Any) -> list[str]:
    """`--read-option KEY=VALUE` for each item of the run's `params.read_options`."""
    return [arg for item in context["params"]["read_options"] for arg in ("--read-option", str(item))]


def list_prefix_args(context: Any) -> list[str]:
    """`--list-prefix` with `params.list_prefix`, its {ds}/{ds_nodash} the run's day; none when it is empty."""
    prefix = context["params"]["list_prefix"]
    if not prefix:
        return []
    return ["--list-prefix", prefix.replace("{ds_nodash}", context["ds_nodash"]).replace("{ds}", context["ds"])]


def spark_steps(convert: SparkSubmitOperator) -> None:
    """convert >> validate >> train >> predict, the last three on `params.dataset` and `params.model_dir`."""
    validate = spark_job("validate", "validate", ["--data", "{{ params.dataset }}"])
    # One model dir for every run: train continues from its checkpoint on the dataset's new version.
    train = spark_job("train", "train", [
        "--data", "{{ params.dataset }}", "--model-dir", "{{ params.model_dir }}",
        "--num-proc", "{{ params.num_proc }}", "--epochs", "{{ params.epochs }}"])
    predict = spark_job("predict", "predict", [
        "--model", "{{ params.model_dir }}",
        "--data", "{{ params.dataset }}", "--split", "{{ params.split }}",
        "--output", "{{ params.predictions }}/{{ ds_nodash }}", "--mode", "overwrite"])
    convert >> validate >> train >> predict


with DAG(
    dag_id="tfrecordpipe_spark",
    description="Convert image folders, validate, train with Horovod on Spark, predict",
    **SCHEDULE,
    params=PARAMS,
) as spark_dag:
    spark_steps(SparkSubmitWithRunArgs(
        task_id="convert",
        application=f"{PROJECT}/jobs/convert_images.py",
        application_args=["--input", "{{ params.images }}", "--output", "{{ params.dataset }}",
                          "--num-shards", "{{ params.num_shards }}", "--mode", "{{ params.mode }}"],
        run_args=list_prefix_args,
        py_files=PY_FILES,
        conf=CONF,
        name="tfrecordpipe-convert",
        conn_id="spark_default",
    ))


with DAG(
    dag_id="tfrecordpipe_table",
    description="Convert a table (CSV with reader options, Parquet, JSON, ORC), validate, train, predict",
    **SCHEDULE,
    params=TABLE_PARAMS,
) as table_dag:
    spark_steps(SparkSubmitWithRunArgs(
        task_id="convert",
        application=f"{PROJECT}/jobs/convert_table.py",
        application_args=["--input", "{{ params.table }}", "--format", "{{ params.format }}",
                          "--label", "{{ params.label }}", "--output", "{{ params.dataset }}",
                          "--num-shards", "{{ params.num_shards }}", "--mode", "{{ params.mode }}"],
        run_args=read_option_args,
        py_files=PY_FILES,
        conf=CONF,
        name="tfrecordpipe-convert",
        conn_id="spark_default",
    ))


with DAG(
    dag_id="tfrecordpipe_databricks",
    description="Run the tfrecordpipe Databricks job (deploy/databricks/databricks.yml)",
    **SCHEDULE,
    params={"job_name": Param("tfrecordpipe-images", type="string", pattern=r"^[A-Za-z0-9_\-]+$"),
            "num_proc": PARAMS["num_proc"]},
) as databricks_dag:
    DatabricksRunNowOperator(
        task_id="run_job",
        databricks_conn_id="databricks_default",
        job_name="{{ params.job_name }}",
        notebook_params={"num_proc": "{{ params.num_proc }}"},
    )
