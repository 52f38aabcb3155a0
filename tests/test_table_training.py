"""Tables end to end: a real dataset a package ships (palmerpenguins), wide-and-deep on 2 Horovod processes."""

from __future__ import annotations

import json
import os

import palmerpenguins
import pytest
import tensorflow as tf

from conversion.tables.convert import convert_table
from conversion.tables.options import TableConvertOptions
from dataset.errors import TrainingError
from dataset.versions import read_manifest
from inference.predict import accuracy, predict_split, predict_table_file
from tests.conftest import needs_tfrecord_jar
from training.config import TrainConfig
from training.run import run_training

pytestmark = [pytest.mark.slow, needs_tfrecord_jar]  # table datasets are written by spark-tfrecord
PENGUINS = os.path.join(os.path.dirname(palmerpenguins.__file__), "data", "penguins.csv")
SPEC = {
    "columns": {
        "island": {"type": "categorical", "as": "embedding", "dimension": 3},
        "sex": {"type": "categorical", "as": "indicator"},
        "body_mass_g": {"type": "bucketized"},
    },
    "crosses": [{"columns": ["island", "sex"], "hash_bucket_size": 16}],
    "exclude": ["year"],
}


@pytest.fixture(scope="module")
def penguins(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("penguins")
    convert_table(
        spark,
        TableConvertOptions(
            output=str(root / "species"), label="species", input=PENGUINS, csv_null_value="NA", num_shards=2
        ),
    )
    spec = root / "spec.json"
    spec.write_text(json.dumps(SPEC))
    return root, spec


def test_wide_and_deep_classifies_species_and_predicts(spark, penguins, tmp_path):
    root, spec = penguins
    data = root / "species"
    manifest = read_manifest(str(data))
    assert manifest.labels == ("Adelie", "Chinstrap", "Gentoo") and manifest.table.task == "classification"
    assert manifest.table.columns["sex"].stats.null_count > 0  # the CSV's NA values
    config = TrainConfig(
        str(data),
        str(tmp_path / "model"),
        batch_size=16,
        epochs=30,
        eval_split="test",
        feature_spec=str(spec),
        summary_steps=50,
        checkpoint_steps=500,
    )
    result = run_training(spark, config, num_proc=2)
    assert result.metrics["eval"]["accuracy"] >= 0.9  # 3 species: chance is about 0.44 for the largest class
    assert len({r["weights_sha256"] for r in result.per_rank}) == 1
    export = result.metrics["export_path"]
    rows = predict_split(spark, export, str(data), "test")
    assert rows.count() == manifest.splits["test"].num_records
    assert accuracy(rows) == pytest.approx(result.metrics["eval"]["accuracy"], abs=1e-6)
    whole = predict_table_file(spark, export, PENGUINS, "csv", "NA")
    assert whole.count() == 344 and accuracy(whole) >= 0.9
    by_columns = tf.saved_model.load(export).signatures["columns:predict"]
    values = {
        "island": b"Biscoe",
        "sex": b"male",
        "bill_length_mm": 48.0,
        "bill_depth_mm": 15.0,
        "flipper_length_mm": 220,
        "body_mass_g": 5400,
    }
    inputs = by_columns.structured_input_signature[1]
    assert sorted(inputs) == sorted(values)  # the columns the model uses: year is excluded by the spec
    one = {name: tf.constant([values[name]], dtype=spec.dtype) for name, spec in inputs.items()}
    assert by_columns(**one)["classes"].numpy()[0, 0] == b"Gentoo"


def test_regression_beats_the_mean(spark, tmp_path):
    data = tmp_path / "mass"
    convert_table(
        spark,
        TableConvertOptions(
            output=str(data),
            label="body_mass_g",
            input=PENGUINS,
            task="regression",
            csv_null_value="NA",
            num_shards=2,
            max_reject_fraction=0.05,
        ),
    )
    manifest = read_manifest(str(data))
    stats = manifest.table.columns["body_mass_g"].stats
    config = TrainConfig(
        str(data),
        str(tmp_path / "model"),
        batch_size=16,
        epochs=40,
        eval_split="test",
        params={"learning_rate": 0.05},
        export=False,
        summary_steps=50,
        checkpoint_steps=1000,
    )
    result = run_training(spark, config, num_proc=2)
    assert result.metrics["eval"]["average_loss"] < 0.5 * stats.stddev**2  # MSE well under the label's variance


def test_feature_spec_errors_are_clear(spark, penguins, tmp_path):
    root, _ = penguins
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"columns": {"beak_colour": {"type": "numeric"}}}))
    with pytest.raises(TrainingError, match=r"the feature spec names unknown columns \['beak_colour'\]"):
        run_training(spark, TrainConfig(str(root / "species"), str(tmp_path / "m"), feature_spec=str(bad)), num_proc=2)
    bad.write_text(json.dumps({"columns": {"island": {"type": "numeric"}}}))
    with pytest.raises(TrainingError, match="column 'island' holds strings; it cannot be numeric"):
        run_training(spark, TrainConfig(str(root / "species"), str(tmp_path / "m"), feature_spec=str(bad)), num_proc=2)


def test_feature_plan_defaults_for_columns_without_vocabulary_and_bad_names(penguins):
    from dataclasses import replace

    from training.tables.features import plan_features

    root, _ = penguins
    manifest = read_manifest(str(root / "species"))
    columns = dict(manifest.table.columns)
    sex = columns["sex"]  # e.g. a column that is null in the statistics split: no vocabulary
    columns["sex"] = replace(sex, stats=replace(sex.stats, vocabulary=()))
    plan = plan_features(replace(manifest, table=replace(manifest.table, columns=columns)), {})
    assert plan["columns"]["sex"] == {"type": "hashed", "hash_bucket_size": 16, "as": "indicator"}
    assert plan["columns"]["island"] == {"type": "categorical", "as": "indicator"}
    columns["body mass (g)"] = columns.pop("body_mass_g")
    features = dict(manifest.features)
    features["body mass (g)"] = features.pop("body_mass_g")
    with pytest.raises(TrainingError, match=r"column 'body mass \(g\)' cannot name a feature column"):
        plan_features(replace(manifest, features=features, table=replace(manifest.table, columns=columns)), {})
