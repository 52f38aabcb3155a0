"""Training on dataset versions: a model dir continues on a new version with the same graph, refuses (one line,
before Horovod) a version whose labels or vocabulary differ, and --warm-start-from starts a new model from it."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf
from horovod.spark.driver import job_id

from conversion.images.convert import convert_images
from conversion.images.options import ImageConvertOptions
from conversion.tables.convert import convert_table
from conversion.tables.options import TableConvertOptions
from dataset.errors import TrainingError
from dataset.versions import read_version
from jobs import train as train_job
from tests.conftest import needs_tfrecord_jar
from tests.test_versions import tree
from training.config import TrainConfig
from training.history import with_entry
from training.run import plan_run, run_training
from training.spec_diff import first_difference, moved_statistics
from training.tables.features import variable_uses_column

SPLITS = (("train", 0.75), ("test", 0.25))
ADVICE = "train into a fresh --model-dir, or start from this model with --warm-start-from"


def config(data: Path, model_dir: Path, **changes) -> TrainConfig:
    values = dict(
        data=str(data), model_dir=str(model_dir), batch_size=4, eval_split="test", checkpoint_steps=100, export=False
    )
    return TrainConfig(**dict(values, **changes))


def digests(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def convert(spark, root: Path, data: Path, mode: str) -> None:
    convert_images(spark, ImageConvertOptions(str(root), str(data), splits=SPLITS, num_shards=1, mode=mode))


@pytest.fixture(scope="module")
def images(spark, tmp_path_factory) -> SimpleNamespace:
    """Images v1 trained 3 steps, then v2 (the larger tree) continued for one epoch with an export: the two
    Horovod runs every image test below reads (the tests that must not change `model` plan only, or copy it)."""
    tmp = tmp_path_factory.mktemp("images")
    root, data, model = tmp / "images", tmp / "data", tmp / "model"
    convert(spark, tree(root, {"cat": 8, "dog": 8}, 1), data, "error")  # version 1
    first = run_training(spark, config(data, model, max_steps=3), num_proc=1)
    spec = json.loads((model / "model_spec.json").read_text())
    convert(spark, tree(root, {"cat": 8, "dog": 8}, 2), data, "overwrite")  # the larger tree: version 2
    v2 = read_version(str(data))
    second = run_training(spark, config(data, model, epochs=1.0, export=True), num_proc=1)
    per_epoch = v2.manifest.splits["train"].num_records // 4
    return SimpleNamespace(
        tmp=tmp, root=root, data=data, model=model, first=first, spec=spec, v2=v2, second=second, per_epoch=per_epoch
    )


@pytest.mark.slow
def test_images_continue_on_a_new_version(images):
    data, per_epoch = images.data, images.per_epoch
    assert images.first.metrics["global_step"] == 3
    spec = images.spec
    assert spec["labels"] == ["cat", "dog"] and spec["kind"] == "images"
    scalar = {"dtype": "string", "shape": []}
    assert spec["features"] == {"image/class/text": scalar, "image/encoded": scalar}
    assert spec["params"] == {
        "channels": 3,
        "conv_depth": 2,
        "conv_width": 16,
        "dense_units": 64,
        "image_size": [32, 32],
        "optimizer": "adam",
    }
    assert images.v2.number == 2
    second = images.second
    assert second.metrics["steps_run"] == per_epoch and second.metrics["global_step"] == 3 + per_epoch
    written = json.loads((images.model / "metrics.json").read_text())
    assert [(e["data"]["version"], e["steps"], e["global_step"]) for e in written["trained_on"]] == [
        (1, 3, 3),
        (2, per_epoch, 3 + per_epoch),
    ]
    assert (
        written["trained_on"][1]["data"]
        == written["data"]
        == {
            "data": str(data),
            "version": 2,
            "manifest_sha256": images.v2.sha256,
        }
    )
    assert written["trained_on"][1]["eval"] == written["eval"] and written["global_step"] == 3 + per_epoch
    assert json.loads(Path(second.metrics["export_path"], "assets.extra", "model_spec.json").read_text()) == spec


@pytest.mark.slow
def test_images_refuse_a_new_label_and_warm_start(spark, images, capsys):
    tmp, data, model, per_epoch = images.tmp, images.data, images.model, images.per_epoch
    convert(spark, tree(images.root, {"zebra": 6}, 3), data, "overwrite")  # a new label folder: version 3
    before, started = digests(model), job_id.JOB_ID
    capsys.readouterr()
    argv = ["--data", str(data), "--num-proc", "1", "--batch-size", "4", "--eval-split", "test", "--no-export"]
    assert train_job.main([*argv, "--model-dir", str(model)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: version 3 of {data} has label 'zebra' that model dir {model} was not trained on "
        f"(labels: cat, dog); {ADVICE} {model}"
    ]
    assert job_id.JOB_ID == started  # no Horovod run began
    assert digests(model) == before
    pinned = plan_run(config(data, model, data_version=2), 1)  # --version 2 still continues
    assert pinned.start_step == 3 + per_epoch and pinned.lineage["version"] == 2 and pinned.note is None
    legacy = tmp / "legacy"  # a checkpoint from before model specs: nothing to check against
    shutil.copytree(model, legacy)
    (legacy / "model_spec.json").unlink()
    with pytest.raises(TrainingError) as raised:
        plan_run(config(data, legacy, data_version=2), 1)
    assert str(raised.value) == (
        f"model dir {legacy} holds a checkpoint (global step {3 + per_epoch}) but no model_spec.json saying what it "
        f"was trained on, so version 2 of {data} cannot be checked against it; {ADVICE} {legacy}"
    )
    with pytest.raises(TrainingError, match=r"holds neither a checkpoint nor a SavedModel export; give an earlier"):
        plan_run(config(data, tmp / "new", warm_start_from=str(images.root)), 1)

    fresh = tmp / "fresh"
    assert train_job.main([*argv, "--model-dir", str(fresh), "--warm-start-from", str(model), "--max-steps", "2"]) == 0
    assert f"warm-started from {model}: 6 of 8 variables (fresh: logits/bias, logits/kernel)" in capsys.readouterr().out
    metrics = json.loads((fresh / "metrics.json").read_text())
    assert metrics["global_step"] == 2 and metrics["warm_start"]["fresh"] == ["logits/bias", "logits/kernel"]
    assert [(e["data"]["version"], e["steps"], e["warm_started_from"]) for e in metrics["trained_on"]] == [
        (3, 2, str(model))
    ]
    source = tf.train.latest_checkpoint(str(model))
    start = str(fresh / "model.ckpt-0")  # saved before the first step: the warm-started values
    for name in ("conv0/kernel", "conv1/kernel", "dense/kernel", "dense/bias"):
        np.testing.assert_array_equal(tf.train.load_variable(start, name), tf.train.load_variable(source, name))
    assert tf.train.load_variable(start, "logits/kernel").shape == (64, 3)
    warmed = ("conv0/bias", "conv0/kernel", "conv1/bias", "conv1/kernel", "dense/bias", "dense/kernel")
    assert tuple(metrics["warm_start"]["variables"]) == warmed
    export = images.second.metrics["export_path"]  # an export (its variables/ and its copy of the spec) gives the same
    from_export = plan_run(config(data, tmp / "other", warm_start_from=export), 1).warm_start
    assert (from_export.variables, from_export.fresh) == (warmed, ("logits/bias", "logits/kernel"))
    with pytest.raises(TrainingError, match=r"already holds a checkpoint \(global step 2\); --warm-start-from starts"):
        plan_run(config(data, fresh, warm_start_from=str(model)), 1)


def table_rows(first: int, last: int, age: int, colors: tuple[str, str] = ("red", "blue")) -> list[str]:
    """CSV rows `first`..`last-1`: a label, a colour (the first 3 times in 4) and an age around `age`."""
    return [
        f"{i},{'cat' if i % 2 else 'dog'},{colors[0] if i % 4 else colors[1]},{age + i % 7}" for i in range(first, last)
    ]


def write_csv(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join(["id,animal,color,age", *rows]) + "\n")
    return path


def double_constants(export: str) -> set[float]:
    """The float64 constants of an export's serving graph (the normalisation is baked in as such)."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel.FromString(Path(export, "saved_model.pb").read_bytes())
    nodes = saved.meta_graphs[0].graph_def.node
    return {
        float(v)
        for node in nodes
        if node.op == "Const" and node.attr["dtype"].type == tf.float64.as_datatype_enum
        for v in tf.make_ndarray(node.attr["value"].tensor).ravel()
    }


@pytest.fixture(scope="module")
def table(spark, tmp_path_factory) -> SimpleNamespace:
    """A table v1 trained 2 steps, then v2 (more rows, older ages: the means move; the same vocabularies) continued
    by the job for one epoch with an export: the two Horovod runs the table tests read."""
    tmp = tmp_path_factory.mktemp("table")
    data, model = tmp / "table", tmp / "model"
    options = dict(output=str(data), label="animal", key="id", splits=SPLITS, num_shards=1)
    rows = table_rows(0, 40, 20)
    convert_table(spark, TableConvertOptions(input=str(write_csv(tmp / "v1.csv", rows)), **options))
    v1 = read_version(str(data))
    run_training(spark, config(data, model, max_steps=2), num_proc=1)
    spec = json.loads((model / "model_spec.json").read_text())
    rows += table_rows(40, 80, 40)
    convert_table(spark, TableConvertOptions(input=str(write_csv(tmp / "v2.csv", rows)), mode="overwrite", **options))
    v2 = read_version(str(data))
    out = io.StringIO()
    argv = ["--data", str(data), "--model-dir", str(model), "--num-proc", "1", "--batch-size", "4"]
    with contextlib.redirect_stdout(out):
        code = train_job.main([*argv, "--eval-split", "test", "--epochs", "1"])
    return SimpleNamespace(
        tmp=tmp,
        data=data,
        model=model,
        options=options,
        rows=rows,
        v1=v1,
        v2=v2,
        spec=spec,
        code=code,
        out=out.getvalue(),
    )


@pytest.mark.slow
@needs_tfrecord_jar
def test_table_continues_with_the_normalisation_it_was_built_with(table):
    data, model = table.data, table.model
    before = table.v1.manifest.table.columns["age"].stats
    after = table.v2.manifest.table.columns["age"].stats
    assert table.v2.number == 2 and after.mean > before.mean and after.stddev != before.stddev
    vocabulary = table.v2.manifest.table.columns["color"].stats.vocabulary
    assert [value for value, _ in vocabulary] == ["red", "blue"]
    assert table.spec["columns"]["age"] == {"type": "numeric", "as": None, "mean": before.mean, "stddev": before.stddev}
    assert table.code == 0
    moved = (
        f"mean of 'age' {(after.mean - before.mean) / before.mean * 100:+.1f}%, "
        f"stddev of 'age' {(after.stddev - before.stddev) / before.stddev * 100:+.1f}%"
    )
    notes = [line for line in table.out.splitlines() if line.startswith("continuing")]
    assert notes == [
        f"continuing with the normalisation model dir {model} was built with (version 1); "
        f"version 2's statistics moved: {moved}"
    ]
    per_epoch = table.v2.manifest.splits["train"].num_records // 4
    written = json.loads((model / "metrics.json").read_text())
    assert [(e["data"]["version"], e["steps"], e["global_step"]) for e in written["trained_on"]] == [
        (1, 2, 2),
        (2, per_epoch, 2 + per_epoch),
    ]
    # the model keeps v1's normalisation: in its record, its export's copy and the export's graph
    assert json.loads((model / "model_spec.json").read_text()) == table.spec
    export = written["export_path"]
    assert json.loads(Path(export, "assets.extra", "model_spec.json").read_text()) == table.spec
    baked = double_constants(export)
    assert {before.mean, before.stddev} <= baked and not {after.mean, after.stddev} & baked
    plan = plan_run(config(data, model), 1)  # what the ranks build the columns from
    assert plan.model_params["constants"]["age"] == {"mean": before.mean, "stddev": before.stddev}
    assert plan.note == notes[0]


@pytest.mark.slow
@needs_tfrecord_jar
def test_table_with_a_new_vocabulary_value_stops_naming_the_column(spark, table, capsys):
    data, model = table.data, table.model
    rows = table.rows + table_rows(80, 120, 40, ("green", "red"))
    convert_table(
        spark, TableConvertOptions(input=str(write_csv(table.tmp / "v3.csv", rows)), mode="overwrite", **table.options)
    )
    vocabulary = read_version(str(data)).manifest.table.columns["color"].stats.vocabulary
    assert "green" in [value for value, _ in vocabulary]
    before, started = digests(model), job_id.JOB_ID
    capsys.readouterr()
    argv = ["--data", str(data), "--model-dir", str(model), "--num-proc", "1", "--batch-size", "4"]
    assert train_job.main([*argv, "--eval-split", "test"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: version 3 of {data} has value 'green' in the vocabulary of column 'color' that model dir {model} "
        f"was not trained on (vocabulary: red, blue); {ADVICE} {model}"
    ]
    assert job_id.JOB_ID == started  # no Horovod run began
    assert digests(model) == before


TABLE_SPEC = {
    "format": 1,
    "kind": "table",
    "task": "classification",
    "label_column": "y",
    "labels": ["a", "b"],
    "features": {"x": {"dtype": "float32", "shape": []}, "y": {"dtype": "string", "shape": []}},
    "columns": {"x": {"type": "numeric", "as": None, "mean": 1.5, "stddev": 2.0}},
    "crosses": [],
    "params": {"hidden_units": [8]},
}


def changed(**entries) -> dict:
    return json.loads(json.dumps(dict(TABLE_SPEC, **entries)))


@pytest.mark.parametrize(
    ("new", "message"),
    [
        (changed(labels=["a"]), "V lacks label 'b' that M was trained on (labels: a, b)"),
        (changed(labels=["b", "a"]), "V orders its labels b, a; M was trained on a, b"),
        (
            changed(features=dict(TABLE_SPEC["features"], z={"dtype": "int64", "shape": []})),
            "V has feature 'z' (int64) that M was not trained on",
        ),
        (changed(features={"y": TABLE_SPEC["features"]["y"]}), "V has no feature 'x', which M was trained on"),
        (
            changed(features=dict(TABLE_SPEC["features"], x={"dtype": "int64", "shape": []})),
            "V has feature 'x' as int64 []; M was trained on it as float32 []",
        ),
        (
            changed(columns={"x": {"type": "numeric", "as": None, "mean": 1.75, "stddev": 2.0}}),
            "V normalises column 'x' with mean 1.75 and stddev 2.0; M was trained with mean 1.5 and stddev 2.0",
        ),
        (changed(params={"hidden_units": [16]}), "hyper-parameter hidden_units is [16]; M was built with [8]"),
        (changed(task="regression"), "V has task 'regression'; M was trained on 'classification'"),
        (changed(), None),
    ],
)
def test_first_difference_names_what_changed(new, message):
    assert first_difference(changed(), new, "V", "M") == message


def test_history_adds_one_entry_per_version():
    one, two = {"version": 1}, {"version": 2}
    entries = with_entry([], {"data": one, "steps": 3, "global_step": 3, "eval": {"loss": 1.0}})
    entries = with_entry(entries, {"data": one, "steps": 2, "global_step": 5, "eval": {"loss": 0.5}})
    entries = with_entry(entries, {"data": two, "steps": 0, "global_step": 5, "eval": {"loss": 0.4}})
    entries = with_entry(entries, {"data": two, "steps": 4, "global_step": 9, "eval": {"loss": 0.3}})
    assert entries == [
        {"data": one, "steps": 5, "global_step": 5, "eval": {"loss": 0.5}},
        {"data": two, "steps": 4, "global_step": 9, "eval": {"loss": 0.3}},
    ]


def test_variables_of_a_column_are_found_by_their_scope_names():
    assert variable_uses_column("linear_model/island_indicator/weights", "island")
    assert variable_uses_column("input_layer/island_embedding/embedding_weights", "island")
    assert variable_uses_column("linear_model/body_mass_g_bucketized_X_island_indicator/weights", "island")
    assert variable_uses_column("linear_model/body_mass_g_bucketized/weights", "body_mass_g")
    assert not variable_uses_column("linear_model/island_x_indicator/weights", "island")
    assert not variable_uses_column("hidden0/kernel", "island")


def test_a_continued_run_keeps_normalisation_and_boundaries_but_not_a_bucket_count():
    from training.tables.features import keep_constants

    plan = {"columns": {"x": {"type": "numeric", "as": None}, "b": {"type": "bucketized", "as": "indicator"}}}
    recorded = {
        "columns": {
            "x": {"type": "numeric", "as": None, "mean": 1.5, "stddev": 2.0},
            "b": {"type": "bucketized", "as": "indicator", "boundaries": [1.0, 2.0]},
        }
    }
    moved = {"x": {"mean": 1.75, "stddev": 2.5}, "b": {"boundaries": [1.5, 2.5]}}
    params = {"feature_plan": plan, "constants": moved}
    assert keep_constants(params, recorded)["constants"] == {
        "x": {"mean": 1.5, "stddev": 2.0},
        "b": {"boundaries": [1.0, 2.0]},
    }
    assert moved_statistics(recorded, {"columns": {name: dict(plan["columns"][name], **moved[name]) for name in moved}})
    three = {"feature_plan": plan, "constants": dict(moved, b={"boundaries": [1.0, 2.0, 3.0]})}
    assert keep_constants(three, recorded)["constants"]["b"] == {"boundaries": [1.0, 2.0, 3.0]}
    other_use = {"feature_plan": {"columns": dict(plan["columns"], x={"type": "numeric", "as": "other"})}}
    assert keep_constants(dict(other_use, constants=moved), recorded)["constants"]["x"] == moved["x"]


@pytest.mark.parametrize(
    ("columns", "line"),
    [
        ({"x": {"mean": 2.0, "stddev": 2.0}}, "mean of 'x' +33.3%"),
        ({"x": {"mean": 1.5, "stddev": 1.0}}, "stddev of 'x' -50.0%"),
        ({"z": {"mean": 0.25, "stddev": 1.0}}, "mean of 'z' +0.25"),
        (
            {"w": {"boundaries": [2.0]}, "x": {"mean": 3.0, "stddev": 3.0}, "z": {"mean": 1.0, "stddev": 1.0}},
            "boundaries of 'w', mean of 'x' +100.0%, stddev of 'x' +50.0% and 1 more",
        ),
        ({}, None),
    ],
)
def test_moved_statistics_in_a_few_words(columns, line):
    old = {"w": {"boundaries": [1.0]}, "x": {"mean": 1.5, "stddev": 2.0}, "z": {"mean": 0.0, "stddev": 1.0}}
    new = {name: dict(old[name], **columns.get(name, {})) for name in old}
    assert moved_statistics({"columns": old}, {"columns": new}) == line


def test_a_bucket_count_change_is_named():
    old = {"columns": {"b": {"type": "bucketized", "boundaries": [1.0, 2.0]}}}
    new = {"columns": {"b": {"type": "bucketized", "boundaries": [1.0, 2.0, 3.0]}}}
    assert (
        first_difference(old, new, "V", "M")
        == "V has 4 buckets for column 'b'; M was trained with 3 (boundaries [1.0, 2.0])"
    )
