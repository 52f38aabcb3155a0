"""The table export's serving input: serialized Examples, and the raw columns by name as a second signature."""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from dataset.export import COLUMNS_INPUT, EXAMPLES_INPUT, column_input_name
from dataset.manifest import Manifest
from training.input import KEY_FEATURE


def table_receiver_fn(manifest: Manifest, params: dict) -> Callable[[], tf.estimator.export.ServingInputReceiver]:
    """Receives serialized Examples; the columns the model uses are a second signature's inputs, by name."""
    plan = params["feature_plan"]
    names = sorted(set(plan["columns"]) | {c for cross in plan["crosses"] for c in cross["columns"]})
    spec = manifest.tf_feature_spec(names)

    def receiver() -> tf.estimator.export.ServingInputReceiver:
        serialized = tf.compat.v1.placeholder(tf.string, [None], name=EXAMPLES_INPUT)
        parsed = tf.io.parse_example(serialized, spec)
        columns = {name: tf.identity(parsed[name], name=f"column_{i}") for i, name in enumerate(names)}
        features = dict(columns, **{KEY_FEATURE: tf.fill(tf.shape(serialized), "")})
        inputs = {column_input_name(name): tensor for name, tensor in columns.items()}  # unique: plan_features
        return tf.estimator.export.ServingInputReceiver(
            features, {EXAMPLES_INPUT: serialized}, receiver_tensors_alternatives={COLUMNS_INPUT: inputs}
        )

    return receiver
