"""The image classifier `model_fn`: a small CNN from layers, with loss, metrics and predictions
from the Head API, and Horovod's distributed optimizer in TRAIN mode."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tensorflow as tf


def make_head(labels: tuple[str, ...]) -> Any:
    """`BinaryClassHead` for two labels, `MultiClassHead` otherwise; labels are the label names."""
    if len(labels) == 2:
        return tf.estimator.BinaryClassHead(label_vocabulary=list(labels))
    return tf.estimator.MultiClassHead(n_classes=len(labels), label_vocabulary=list(labels))


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


def _optimizer(params: dict[str, Any], num_ranks: int) -> tf.compat.v1.train.Optimizer:
    step = tf.cast(tf.compat.v1.train.get_or_create_global_step(), tf.float32)
    warmup = max(1.0, float(params["warmup_steps"]))
    # Horovod: the learning rate scales with the number of processes, reached after a linear warm-up.
    rate = float(params["learning_rate"]) * num_ranks * tf.minimum(1.0, (step + 1.0) / warmup)
    tf.compat.v1.summary.scalar("learning_rate", rate)
    if params["optimizer"] == "sgd":
        return tf.compat.v1.train.GradientDescentOptimizer(rate)
    if params["optimizer"] == "momentum":
        return tf.compat.v1.train.MomentumOptimizer(rate, momentum=0.9)
    return tf.compat.v1.train.AdamOptimizer(rate)


def make_train_op_fn(params: dict[str, Any]) -> Callable[[tf.Tensor], tf.Operation]:
    """The head's `train_op_fn`: the optimizer from `params`, wrapped by Horovod in a Horovod rank."""

    def train_op_fn(loss: tf.Tensor) -> tf.Operation:
        if not params.get("horovod"):
            return _optimizer(params, 1).minimize(loss, global_step=tf.compat.v1.train.get_global_step())
        import horovod.tensorflow as hvd

        num_ranks = hvd.size()  # Horovod: for the learning-rate scaling
        optimizer = hvd.DistributedOptimizer(_optimizer(params, num_ranks))  # Horovod: allreduce gradients
        return optimizer.minimize(loss, global_step=tf.compat.v1.train.get_global_step())

    return train_op_fn


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
