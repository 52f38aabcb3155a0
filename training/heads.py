"""What every kind's `model_fn` shares: the classification head and the Horovod train op."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tensorflow as tf


def make_head(labels: tuple[str, ...]) -> Any:
    """`BinaryClassHead` for two labels, `MultiClassHead` otherwise; labels are the label names."""
    if len(labels) == 2:
        return tf.estimator.BinaryClassHead(label_vocabulary=list(labels))
    return tf.estimator.MultiClassHead(n_classes=len(labels), label_vocabulary=list(labels))


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
