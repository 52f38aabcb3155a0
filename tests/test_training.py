"""Horovod-on-Spark training with 2 real processes, export, resume, failures and prediction."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from dataset.errors import DatasetError, TrainingError
from dataset.export import load_labels
from dataset.versions import read_manifest
from inference.predict import accuracy, predict_images, predict_split
from training.config import TrainConfig
from training.images.model import IMAGE_PARAMS as DEFAULT_PARAMS
from training.images.model import model_fn
from training.run import run_training

pytestmark = pytest.mark.slow
STEPS = 120


def config(data, model_dir, **changes) -> TrainConfig:
    values = dict(
        data=str(data),
        model_dir=str(model_dir),
        batch_size=16,
        max_steps=STEPS,
        eval_split="test",
        checkpoint_steps=40,
        summary_steps=10,
    )
    values.update(changes)
    return TrainConfig(**values)


@pytest.fixture(scope="module")
def trained(spark, shapes_dataset, tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("model") / "run"
    result = run_training(spark, config(shapes_dataset, model_dir), num_proc=2)
    return model_dir, result


@pytest.fixture(scope="module")
def split_predictions(spark, shapes_dataset, trained):
    """predict_split of the test split with the trained export, computed once (persisted) for the tests reading it."""
    _, result = trained
    frame = predict_split(spark, result.metrics["export_path"], str(shapes_dataset), "test").persist()
    yield frame
    frame.unpersist()


def test_two_processes_train_to_accuracy_with_identical_weights(trained, shapes_dataset):
    model_dir, result = trained
    assert result.metrics["eval"]["accuracy"] >= 0.6  # 4 labels: chance is 0.25
    assert [r["rank"] for r in result.per_rank] == [0, 1]
    checksums = {r["weights_sha256"] for r in result.per_rank}
    assert len(checksums) == 1 and None not in checksums
    assert all(r["global_step"] == STEPS for r in result.per_rank)
    written = json.loads((model_dir / "metrics.json").read_text())
    assert written["global_step"] == STEPS and written["num_proc"] == 2 and written["steps_run"] == STEPS
    assert len(written["examples_per_sec_per_rank"]) == 2 and written["examples_per_sec_total"] > 0
    assert written["export_path"].startswith(str(model_dir / "export"))
    assert list(model_dir.glob("events.out.tfevents.*"))  # TensorBoard summaries from rank 0
    sha = hashlib.sha256((shapes_dataset / "_versions" / "00000001.json").read_bytes()).hexdigest()
    assert written["data"] == {"data": str(shapes_dataset), "version": 1, "manifest_sha256": sha}  # lineage
    lineage = Path(written["export_path"]) / "assets.extra" / "lineage.json"
    assert json.loads(lineage.read_text()) == written["data"]


def test_resume_continues_the_global_step(spark, shapes_dataset, trained, tmp_path):
    model_dir, _ = trained
    copy = tmp_path / "resumed"
    shutil.copytree(model_dir, copy)
    same = run_training(spark, config(shapes_dataset, copy, export=False), num_proc=2)
    assert same.metrics["steps_run"] == 0 and same.metrics["global_step"] == STEPS
    more = run_training(spark, config(shapes_dataset, copy, max_steps=STEPS + 10, export=False), num_proc=2)
    assert more.metrics["steps_run"] == 10 and more.metrics["global_step"] == STEPS + 10


def test_export_predicts_examples_and_image_bytes_like_the_estimator(spark, shapes_dataset, trained, split_predictions):
    model_dir, result = trained
    export = result.metrics["export_path"]
    manifest = read_manifest(str(shapes_dataset))
    assert load_labels(export) == list(manifest.labels)
    loaded = tf.saved_model.load(export)
    test_file = str(shapes_dataset / manifest.splits["test"].files[0].path)
    serialized = next(iter(tf.data.TFRecordDataset(test_file).batch(4)))
    parsed = tf.io.parse_example(serialized, manifest.tf_feature_spec())
    by_example = loaded.signatures["predict"](examples=serialized)
    by_bytes = loaded.signatures["image_bytes:predict"](image_bytes=parsed["image/encoded"])
    np.testing.assert_allclose(by_example["probabilities"].numpy(), by_bytes["probabilities"].numpy(), rtol=1e-5)
    assert [c.decode() for c in by_example["classes"].numpy()[:, 0]] == [
        manifest.labels[i] for i in by_example["class_ids"].numpy()[:, 0]
    ]

    rows = split_predictions.toPandas().set_index("key")
    assert len(rows) == manifest.splits["test"].num_records
    estimator = tf.estimator.Estimator(
        model_fn, model_dir=str(model_dir), params=dict(DEFAULT_PARAMS, labels=list(manifest.labels))
    )
    from training.input import KEY_FEATURE, eval_input_fn
    from training.kinds import split_input_spec

    spec = split_input_spec(str(shapes_dataset), manifest, "test", DEFAULT_PARAMS, 2)
    keys = [k.decode() for features, _ in eval_input_fn(spec, 32)() for k in features[KEY_FEATURE].numpy()]
    own = dict(zip(keys, estimator.predict(eval_input_fn(spec, 32), yield_single_examples=True)))
    assert set(own) == set(rows.index)
    for key, prediction in own.items():
        assert rows.loc[key, "predicted_label"] == prediction["classes"][0].decode()
        np.testing.assert_allclose(rows.loc[key, "probabilities"], prediction["probabilities"], rtol=1e-4, atol=1e-6)
    assert accuracy(split_predictions) == pytest.approx(result.metrics["eval"]["accuracy"], abs=1e-6)
    images = predict_images(spark, export, str(shapes_dataset.parent / "images")).toPandas()
    assert len(images) == 400 and images["true_label"].notna().all()


def test_a_failing_rank_fails_the_job_with_its_error_in_bounded_time(spark, shapes_dataset, tmp_path):
    start = time.monotonic()
    with pytest.raises(TrainingError, match="injected failure on rank 1"):
        run_training(spark, config(shapes_dataset, tmp_path / "m", fail_on_rank=1), num_proc=2)
    assert time.monotonic() - start < 150


def test_bad_inputs_fail_with_one_clear_error(spark, shapes_dataset, tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        run_training(spark, config(tmp_path / "missing", tmp_path / "m1"), num_proc=2)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no _SUCCESS or manifest.json"):
        run_training(spark, config(tmp_path / "empty", tmp_path / "m2"), num_proc=2)
    with pytest.raises(DatasetError, match="split 'nope' is not in the dataset"):
        run_training(spark, config(shapes_dataset, tmp_path / "m3", eval_split="nope"), num_proc=2)
    corrupt = tmp_path / "corrupt"
    shutil.copytree(shapes_dataset, corrupt)
    shard = corrupt / read_manifest(str(corrupt)).splits["train"].files[1].path
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(TrainingError, match=f"corrupt shard .*{shard.name}"):
        run_training(spark, config(corrupt, tmp_path / "m4", max_steps=40), num_proc=2)


def test_report_shows_counts_samples_curves_and_confusion(shapes_dataset, trained, split_predictions, tmp_path):
    from demo.report import write_report

    model_dir, result = trained
    manifest = read_manifest(str(shapes_dataset))
    predictions = split_predictions.toPandas()
    samples = {
        label: [next((shapes_dataset.parent / "images" / label).glob("*.png")).read_bytes()]
        for label in manifest.labels
    }
    path = write_report(
        str(tmp_path / "r.html"), manifest, samples, str(model_dir), "test", predictions, result.metrics
    )
    page = (tmp_path / "r.html").read_text()
    for heading in ("Records per label and split", "Samples per label", "Training", "Confusion matrix (test)"):
        assert f"<h2>{heading}</h2>" in page
    assert page.count("<img") == len(manifest.labels) and "training loss: " in page and "<polyline" in page
    cells = [int(c) for c in __import__("re").findall(r'rgba\(31,119,180,[0-9.]+\)">(\d+)<', page)]
    assert len(cells) == len(manifest.labels) ** 2 and sum(cells) == len(predictions)
    assert path.endswith("r.html")


def test_every_rank_evaluates_and_the_combined_metrics_equal_one_process(spark, shapes_dataset, trained):
    model_dir, result = trained
    assert [r["metrics"] for r in result.per_rank][0] == result.per_rank[1]["metrics"]  # both ranks hold the sums
    assert all(r["eval_seconds"] > 0 for r in result.per_rank) and result.metrics["eval_seconds"] > 0
    manifest = read_manifest(str(shapes_dataset))
    from training.input import eval_input_fn
    from training.kinds import split_input_spec

    estimator = tf.estimator.Estimator(
        model_fn, model_dir=str(model_dir), params=dict(DEFAULT_PARAMS, labels=list(manifest.labels))
    )
    spec = split_input_spec(str(shapes_dataset), manifest, "test", DEFAULT_PARAMS, 2)
    alone = estimator.evaluate(eval_input_fn(spec, 16), name="alone")  # one process, the whole split
    combined = result.metrics["eval"]
    assert combined["accuracy"] == pytest.approx(float(alone["accuracy"]), abs=1e-7)
    assert combined["average_loss"] == pytest.approx(float(alone["average_loss"]), rel=1e-5)
    assert combined["global_step"] == alone["global_step"] == STEPS


def test_the_error_named_is_the_rank_s_own_not_horovod_s_shutdown():
    """Horovod may name first a rank that only failed because another rank's error shut Horovod down."""
    import io

    from training.run import _StderrTail

    tail = _StderrTail(io.StringIO())
    tail.write("[1]<stderr>:RuntimeError: injected failure on rank 1 (fail_on_rank)\n")
    tail.write("[0]<stderr>:tensorflow.python.framework.errors_impl.UnknownError: Horovod has been shut down. ...\n")
    tail.write("[0]<stderr>:tensorflow.python.framework.errors_impl.UnknownError: Graph execution error:\n")
    expected = "rank 1: RuntimeError: injected failure on rank 1 (fail_on_rank)"
    assert tail.rank_error("Process name: 0\nExit code: 1") == expected
    assert tail.rank_error("Process name: 1\nExit code: 1") == expected
    tail.write("[2]<stderr>:ValueError: its own error\n")  # a named rank with its own error stays the one named
    assert tail.rank_error("Process name: 2\nExit code: 1") == "rank 2: ValueError: its own error"
