"""The DAGs import cleanly, have the expected graph, refuse bad parameters and render the right commands."""

from __future__ import annotations

import copy
from pathlib import Path

import pendulum
import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook
from airflow.sdk.exceptions import ParamValidationError
from airflow.serialization.serialized_objects import DagSerialization
from airflow.timetables.base import DataInterval, TimeRestriction
from airflow.timetables.interval import CronDataIntervalTimetable

DAGS = Path(__file__).resolve().parents[1] / "dags"


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    return DagBag(dag_folder=str(DAGS))


def test_dagbag_imports_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert sorted(dagbag.dag_ids) == ["tfrecordpipe_databricks", "tfrecordpipe_spark", "tfrecordpipe_table"]


@pytest.mark.parametrize("dag_id", ["tfrecordpipe_spark", "tfrecordpipe_table"])
def test_task_graph_schedule_and_retries(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    # daily data intervals: the run after midnight covers the day before, and its ds is that day
    assert isinstance(dag.timetable, CronDataIntervalTimetable) and dag.timetable.summary == "0 0 * * *"
    assert not dag.catchup and dag.max_active_runs == 1  # one append at a time
    after_jan_1 = dag.timetable.next_dagrun_info(
        last_automated_data_interval=DataInterval(pendulum.datetime(2026, 1, 1), pendulum.datetime(2026, 1, 2)),
        restriction=TimeRestriction(pendulum.datetime(2026, 1, 1), None, catchup=True))
    assert (after_jan_1.run_after, after_jan_1.logical_date) == (pendulum.datetime(2026, 1, 3), pendulum.datetime(2026, 1, 2))
    order = ["convert", "validate", "train", "predict"]
    for upstream, downstream in zip(order, order[1:]):
        assert dag.get_task(upstream).downstream_task_ids == {downstream}
    assert all(task.retries == 2 for task in dag.tasks)


@pytest.mark.parametrize("name, value", [
    ("images", "/data/raw; rm -rf /"), ("dataset", "/data/$(whoami)"), ("num_shards", 0),
    ("num_proc", 100000), ("epochs", -1), ("split", "everything"), ("mode", "ignore"), ("mode", "Append"),
    ("list_prefix", "/data/2026-01-02"), ("list_prefix", "../other"), ("list_prefix", "a/../../b"),
    ("list_prefix", "{{ ds }}"), ("list_prefix", "{date}"), ("list_prefix", "day 1"), ("list_prefix", "$(id)"),
])
def test_bad_parameters_are_refused_before_any_command_line(dagbag, name, value):
    dag = dagbag.dags["tfrecordpipe_spark"]
    params = copy.deepcopy(dag.params)
    with pytest.raises(ParamValidationError):
        params[name] = value
    # What triggering a run does in Airflow 3 (SerializedDAG.create_dagrun): merge the conf, validate.
    scheduler_dag = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
    with pytest.raises(ParamValidationError):
        scheduler_dag.params.deep_merge({name: value}).validate()
    scheduler_dag.params.deep_merge({}).validate()  # the defaults pass


def rendered_command(task, params: dict) -> list[str]:
    context = {"params": params, "ds": "2026-01-02", "ds_nodash": "20260102"}
    task.render_template_fields(context, jinja_env=task.dag.get_template_env())
    hook = SparkSubmitHook(conf=task.conf, conn_id=task._conn_id, py_files=task.py_files, name=task.name,
                           application_args=task.application_args)
    return hook._build_spark_submit_command(task.application)


def test_rendered_spark_submit_commands(dagbag):
    dag = dagbag.dags["tfrecordpipe_spark"]
    params = dag.params.validate()
    params.update(images="s3a://lake/raw/pets", num_shards=64, num_proc=4)
    commands = {task.task_id: rendered_command(task, params) for task in dag.tasks}
    convert = commands["convert"]
    assert convert[:3] == ["spark-submit", "--master", "spark://spark-master:7077"]
    assert "--py-files" in convert and convert[convert.index("--py-files") + 1] == "/opt/tfrecordpipe/dist/tfrecordpipe.zip"
    # by default: an append that lists the whole image root (no --list-prefix: nothing after the mode)
    assert convert[convert.index("--name"):] == ["--name", "tfrecordpipe-convert",
                             "/opt/tfrecordpipe/jobs/convert_images.py", "--input", "s3a://lake/raw/pets", "--output",
                             "/data/datasets/images", "--num-shards", "64", "--mode", "append"]
    # one model dir for every run (training continues on each new version); predictions per day
    assert commands["train"][-9:] == ["/opt/tfrecordpipe/jobs/train.py", "--data", "/data/datasets/images",
                                      "--model-dir", "/data/models/images", "--num-proc", "4", "--epochs", "5"]
    assert commands["predict"][-11:] == ["/opt/tfrecordpipe/jobs/predict.py", "--model", "/data/models/images",
                                         "--data", "/data/datasets/images", "--split", "test", "--output",
                                         "/data/predictions/images/20260102", "--mode", "overwrite"]
    assert commands["validate"][-3:] == ["/opt/tfrecordpipe/jobs/validate.py", "--data", "/data/datasets/images"]
    assert "spark.task.maxFailures=4" in convert


@pytest.mark.parametrize("list_prefix, expected", [
    ("{ds}", ["--list-prefix", "2026-01-02"]),
    ("landing/{ds_nodash}", ["--list-prefix", "landing/20260102"]),
    ("year=2026/day={ds}/", ["--list-prefix", "year=2026/day=2026-01-02/"]),
    ("fixed/folder", ["--list-prefix", "fixed/folder"]),
    ("*/{ds}", ["--list-prefix", "*/2026-01-02"]),
])
def test_list_prefix_renders_the_runs_day(dagbag, list_prefix, expected):
    dag = dagbag.dags["tfrecordpipe_spark"]
    scheduler_dag = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
    params = scheduler_dag.params.deep_merge({"list_prefix": list_prefix}).validate()  # as a triggered run's conf
    convert = rendered_command(dag.get_task("convert"), params)
    assert convert[-6:] == ["--num-shards", "16", "--mode", "append", *expected]
    # rendering again (a retry) starts from the templates: one --list-prefix, the same one
    assert rendered_command(dag.get_task("convert"), params) == convert
    params.update(list_prefix="")
    assert rendered_command(dag.get_task("convert"), params)[-2:] == ["--mode", "append"]


@pytest.mark.parametrize("mode", ["overwrite", "error"])
def test_mode_param_is_passed_as_given(dagbag, mode):
    dag = dagbag.dags["tfrecordpipe_spark"]
    params = dag.params.validate()
    params.update(mode=mode)
    assert rendered_command(dag.get_task("convert"), params)[-2:] == ["--mode", mode]


def test_table_dag_renders_one_read_option_per_item(dagbag):
    dag = dagbag.dags["tfrecordpipe_table"]
    params = dag.params.validate()
    params.update(table="s3a://lake/raw/cars", label="make", read_options=["sep=\\t", "comment=#", "encoding=latin1"])
    convert = rendered_command(dag.get_task("convert"), params)
    assert convert[-19:] == ["/opt/tfrecordpipe/jobs/convert_table.py", "--input", "s3a://lake/raw/cars",
                             "--format", "csv", "--label", "make", "--output", "/data/datasets/table",
                             "--num-shards", "16", "--mode", "overwrite", "--read-option", "sep=\\t",
                             "--read-option", "comment=#", "--read-option", "encoding=latin1"]
    params.update(read_options=[], mode="append")  # a folder new files land in
    assert rendered_command(dag.get_task("convert"), params)[-2:] == ["--mode", "append"]
    assert rendered_command(dag.get_task("train"), params)[-8:-4] == ["--data", "/data/datasets/table",
                                                                       "--model-dir", "/data/models/table"]


@pytest.mark.parametrize("value", [["sep=;rm -rf /"], ["no-equals"], ["--conf=x"], ["quote=\""], "sep=,"])
def test_table_dag_refuses_bad_read_options(dagbag, value):
    dag = dagbag.dags["tfrecordpipe_table"]
    scheduler_dag = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
    with pytest.raises(ParamValidationError):
        scheduler_dag.params.deep_merge({"read_options": value}).validate()
    scheduler_dag.params.deep_merge({"read_options": ["sep=\\t", "nullValue="]}).validate()


def test_databricks_variant_renders_the_job_and_its_parameters(dagbag):
    dag = dagbag.dags["tfrecordpipe_databricks"]
    (task,) = dag.tasks
    task.render_template_fields({"params": dag.params.validate()}, jinja_env=dag.get_template_env())
    # The run-now payload before the provider resolves job_name to job_id with an API call;
    # notebook_params present, so provider 7.x does not forward the DAG params as job_parameters.
    payload = task._inject_run_now_job_parameters(task._get_merged_json(), context={})
    assert payload == {"job_name": "tfrecordpipe-images", "notebook_params": {"num_proc": "2"}}


def test_local_runs_can_drop_the_zip_and_the_retries(monkeypatch):
    """TFRECORDPIPE_PY_FILES="" and TFRECORDPIPE_RETRIES=0, as `make airflow-demo` and the run tests set them."""
    monkeypatch.setenv("TFRECORDPIPE_PY_FILES", "")
    monkeypatch.setenv("TFRECORDPIPE_RETRIES", "0")
    dag = DagBag(dag_folder=str(DAGS)).dags["tfrecordpipe_spark"]
    assert all(task.retries == 0 and task.py_files is None for task in dag.tasks)
    params = dag.params.validate()
    assert "--py-files" not in rendered_command(dag.get_task("convert"), params)
