"""The image classifier `model_fn`: a small CNN from layers, with loss, metrics and predictions
from the Head API, and Horovod's distributed optimizer in TRAIN mode."""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from training.heads import make_head, make_train_op_fn

# The model's hyper-parameters: what `model_fn` receives as `params` (plus `labels`).
IMAGE_PARAMS: dict[str, Any] = {
    "image_size": [32, 32],  # height, width the images are resized to
    "channels": 3,
    "augment": "none",  # none | imagenet (random resized crop + flip to train, centre crop to evaluate): see augment.py
    "conv_width": 16,  # filters of the first conv block; doubled per block
    "conv_depth": 2,  # conv blocks
    "dense_units": 64,
    "dropout": 0.25,
    "learning_rate": 0.002,  # per process; scaled by the number of processes
    "warmup_steps": 20,
    "optimizer": "adam",  # adam | sgd | momentum
}


def cnn_logits(images: tf.Tensor, params: dict[str, Any], logits_dimension: int, training: bool) -> tf.Tensor:
    """Conv blocks (conv, batch-free ReLU, max-pool) doubling in width, then dense, dropout, logits."""
    x = images
    for block in range(int(params["conv_depth"])):
        width = int(params["conv_width"]) * 2**block
        x = tf.keras.layers.Conv2D(width, 3, padding="same", activation="relu", name=f"conv{block}")(x)
        x = tf.keras.layers.MaxPooling2D(2, name=f"pool{block}")(x)
    x = tf.keras.layers.Flatten(name="flatten")(x)
    x = tf.keras.layers.Dense(int(params["dense_units"]), activation="relu", name="dense")(x)
    x = tf.keras.layers.Dropout(float(params["dropout"]), name="dropout")(x, training=training)
    return tf.keras.layers.Dense(logits_dimension, name="logits")(x)


def model_fn(features: dict, labels: tf.Tensor | None, mode: str, params: dict[str, Any]) -> tf.estimator.EstimatorSpec:
    """`EstimatorSpec` for TRAIN, EVAL and PREDICT.

    `params` holds the hyper-parameters, `labels` (the label names) and `horovod` (whether
    this process is a Horovod rank).
    """
    head = make_head(tuple(params["labels"]))
    training = mode == tf.estimator.ModeKeys.TRAIN
    logits = cnn_logits(features["image"], params, head.logits_dimension, training)

    if training:
        predicted = tf.argmax(logits, axis=-1) if head.logits_dimension > 1 else tf.cast(logits[:, 0] > 0, tf.int64)
        table = tf.constant(list(params["labels"]))
        accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.gather(table, predicted), tf.reshape(labels, [-1])), tf.float32))
        tf.compat.v1.summary.scalar("accuracy/train_batch", accuracy)
    return head.create_estimator_spec(
        features=features, mode=mode, logits=logits, labels=labels, train_op_fn=make_train_op_fn(params)
    )
