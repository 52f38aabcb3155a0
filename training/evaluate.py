"""Evaluation on every rank: each reads its own part of the split, and the metrics are combined exactly.

Every rank evaluates a disjoint part of the split (whole shards, or every n-th record when there
are fewer shards than ranks), so each record is read once across the ranks. The Estimator's
metrics keep their state in metric variables that are all sums (totals and counts of the means,
true/false positives of precision, recall and AUC...); before their final values are read,
`SumMetricsHook` replaces each by its sum over the ranks. Every rank then reports the metrics of
the whole split, as one process evaluating it alone would (up to float rounding of the sums).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tensorflow as tf

from training.input import InputSpec, dataset_options, rank_files, read_in_order


def rank_eval_input_fn(spec: InputSpec, batch_size: int, rank: int, num_ranks: int) -> Callable[[], tf.data.Dataset]:
    """This rank's part of the split, each record once across the ranks, in file order."""
    by_files = len(spec.files) >= num_ranks
    files = rank_files(spec.files, rank, num_ranks)

    def input_fn() -> tf.data.Dataset:
        records = read_in_order(spec, files)  # shards on an object store: as they are fetched
        if not by_files:
            records = records.shard(num_ranks, rank)  # Horovod: fewer files than ranks: every n-th record
        if spec.keep is not None:
            records = records.filter(spec.keep)
        batches = records.batch(batch_size).map(spec.parse, num_parallel_calls=spec.threads)
        return batches.prefetch(2).with_options(dataset_options(spec.threads, deterministic=True))

    return input_fn


class SumMetricsHook(tf.compat.v1.train.SessionRunHook):
    """Horovod: when a rank's evaluation ends, each metric variable becomes its sum over the ranks.

    `Estimator.evaluate` reads the metrics' values in a hook that runs after this one, so they are
    computed from the sums. Every rank builds the same graph, so the allreduces match by name.
    """

    def begin(self) -> None:
        import horovod.tensorflow as hvd

        variables = sorted(tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.METRIC_VARIABLES), key=lambda v: v.name)
        self._sum = tf.group(
            [v.assign(hvd.allreduce(tf.identity(v), op=hvd.Sum)) for v in variables]  # Horovod: sum over ranks
        )

    def end(self, session: tf.compat.v1.Session) -> None:
        session.run(self._sum)


def evaluate_on_rank(
    estimator: tf.estimator.Estimator,
    spec: InputSpec,
    batch_size: int,
    rank: int,
    num_ranks: int,
    name: str,
    checkpoint: str | None,
) -> dict[str, Any]:
    """The split's metrics, evaluated by all ranks together (every rank must call this).

    Args:
        checkpoint: the checkpoint to evaluate; None: the estimator's latest.
    """
    return estimator.evaluate(
        rank_eval_input_fn(spec, batch_size, rank, num_ranks),
        name=name,
        hooks=[SumMetricsHook()],
        checkpoint_path=checkpoint,
    )
