"""The tabular `model_fn`: wide (linear over one-hots, buckets and crosses) and deep (DNN over
normalized numbers and embeddings), each part switchable, with the Head API for
classification (binary, multi-class) and regression."""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from dataset.errors import TrainingError
from dataset.manifest import Manifest
from training.heads import make_head, make_train_op_fn
from training.kind import ModelFn
from training.tables.features import feature_columns

TABLE_PARAMS: dict[str, Any] = {
    "hidden_units": [64, 32],
    "dropout": 0.1,
    "learning_rate": 0.01,  # per process; scaled by the number of processes
    "warmup_steps": 20,
    "optimizer": "adam",
    "wide": True,
    "deep": True,
}


def table_head(task: str, labels: tuple[str, ...]) -> Any:
    return tf.estimator.RegressionHead() if task == "regression" else make_head(labels)


def table_model_fn(manifest: Manifest) -> ModelFn:
    """The `model_fn` for one table dataset; its `params` hold `feature_plan` and `constants` besides the hyper-parameters."""
    head = table_head(manifest.table.task, manifest.labels)

    def model_fn(
        features: dict, labels: tf.Tensor | None, mode: str, params: dict[str, Any]
    ) -> tf.estimator.EstimatorSpec:
        """`EstimatorSpec` for TRAIN, EVAL and PREDICT."""
        wide, deep = feature_columns(manifest, params["feature_plan"], params["constants"])
        training = mode == tf.estimator.ModeKeys.TRAIN
        parts = []
        if params["wide"] and wide:
            parts.append(tf.compat.v1.feature_column.linear_model(features, wide, units=head.logits_dimension))
        if params["deep"] and deep:
            x = tf.compat.v1.feature_column.input_layer(features, deep)
            for i, units in enumerate(params["hidden_units"]):
                x = tf.keras.layers.Dense(int(units), activation="relu", name=f"hidden{i}")(x)
                x = tf.keras.layers.Dropout(float(params["dropout"]))(x, training=training)
            parts.append(tf.keras.layers.Dense(head.logits_dimension, name="deep_logits")(x))
        if not parts:
            raise TrainingError("both the wide and the deep part are off, or have no columns; turn one on")
        logits = tf.add_n(parts)
        return head.create_estimator_spec(
            features=features, mode=mode, logits=logits, labels=labels, train_op_fn=make_train_op_fn(params)
        )

    return model_fn
