"""Training on dataset versions: a model dir continues on a new version with the same graph, refuses (one line,
before Horovod) a version whose labels or vocabulary differ, and --warm-start-from starts a new model from it."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

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
from training.spec_diff import first_difference
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


@pytest.mark.slow
def test_images_continue_on_a_new_version_refuse_a_new_label_and_warm_start(spark, tmp_path, capsys):
    root, data, model = tmp_path / "images", tmp_path / "data", tmp_path / "model"
    convert(spark, tree(root, {"cat": 8, "dog": 8}, 1), data, "error")  # version 1
    first = run_training(spark, config(data, model, max_steps=3), num_proc=1)
    assert first.metrics["global_step"] == 3
    spec = json.loads((model / "model_spec.json").read_text())
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

    convert(spark, tree(root, {"cat": 8, "dog": 8}, 2), data, "overwrite")  # the larger tree: version 2
    v2 = read_version(str(data))
    assert v2.number == 2
    second = run_training(spark, config(data, model, epochs=1.0, export=True), num_proc=1)
    per_epoch = v2.manifest.splits["train"].num_records // 4
    assert second.metrics["steps_run"] == per_epoch and second.metrics["global_step"] == 3 + per_epoch
    written = json.loads((model / "metrics.json").read_text())
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
            "manifest_sha256": v2.sha256,
        }
    )
    assert written["trained_on"][1]["eval"] == written["eval"] and written["global_step"] == 3 + per_epoch

    convert(spark, tree(root, {"zebra": 6}, 3), data, "overwrite")  # a new label folder: version 3
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
    assert pinned.start_step == 3 + per_epoch and pinned.lineage["version"] == 2
    legacy = tmp_path / "legacy"  # a checkpoint from before model specs: nothing to check against
    shutil.copytree(model, legacy)
    (legacy / "model_spec.json").unlink()
    with pytest.raises(TrainingError) as raised:
        plan_run(config(data, legacy, data_version=2), 1)
    assert str(raised.value) == (
        f"model dir {legacy} holds a checkpoint (global step {3 + per_epoch}) but no model_spec.json saying what it "
        f"was trained on, so version 2 of {data} cannot be checked against it; {ADVICE} {legacy}"
    )
    with pytest.raises(TrainingError, match=r"holds neither a checkpoint nor a SavedModel export; give an earlier"):
        plan_run(config(data, tmp_path / "new", warm_start_from=str(tmp_path / "images")), 1)

    fresh = tmp_path / "fresh"
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
    export = second.metrics["export_path"]  # an export (its variables/ and its copy of the spec) gives the same
    assert json.loads(Path(export, "assets.extra", "model_spec.json").read_text()) == spec
    from_export = plan_run(config(data, tmp_path / "other", warm_start_from=export), 1).warm_start
    assert (from_export.variables, from_export.fresh) == (warmed, ("logits/bias", "logits/kernel"))
    with pytest.raises(TrainingError, match=r"already holds a checkpoint \(global step 2\); --warm-start-from starts"):
        plan_run(config(data, fresh, warm_start_from=str(model)), 1)


@pytest.mark.slow
@needs_tfrecord_jar
def test_table_with_a_changed_vocabulary_stops_naming_the_column(spark, tmp_path):
    rows = ["id,animal,color"] + [f"{i},{'cat' if i % 2 else 'dog'},{'red' if i % 4 else 'blue'}" for i in range(40)]
    source = tmp_path / "v1.csv"
    source.write_text("\n".join(rows) + "\n")
    data, model = tmp_path / "table", tmp_path / "model"
    options = dict(output=str(data), label="animal", key="id", splits=SPLITS, num_shards=1)
    convert_table(spark, TableConvertOptions(input=str(source), **options))
    vocabulary = read_version(str(data)).manifest.table.columns["color"].stats.vocabulary
    assert [value for value, _ in vocabulary] == ["red", "blue"]
    run_training(spark, config(data, model, max_steps=2), num_proc=1)
    more = tmp_path / "v2.csv"
    more.write_text("\n".join(rows + [f"{i},cat,{'green' if i % 2 else 'red'}" for i in range(40, 80)]) + "\n")
    convert_table(spark, TableConvertOptions(input=str(more), mode="overwrite", **options))
    before = digests(model)
    with pytest.raises(TrainingError) as raised:
        plan_run(config(data, model), 1)
    assert str(raised.value) == (
        f"version 2 of {data} has value 'green' in the vocabulary of column 'color' that model dir {model} was not "
        f"trained on (vocabulary: red, blue); {ADVICE} {model}"
    )
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
