"""Session hooks for training throughput (examples/s into TensorBoard and metrics.json)."""

from __future__ import annotations

import time

import tensorflow as tf


class ExamplesPerSecondHook(tf.compat.v1.train.SessionRunHook):
    """Counts steps and time; writes `examples_per_sec` summaries when a summary writer is given."""

    def __init__(self, batch_size: int, every_steps: int, output_dir: str | None, scale: int = 1) -> None:
        self._batch_size = batch_size
        self._every = max(1, every_steps)
        self._output_dir = output_dir
        self._scale = scale  # ranks whose examples count towards the total
        self.steps = 0
        self.seconds = 0.0
        self._writer = None
        self._window_start = 0.0
        self._window_steps = 0

    def begin(self) -> None:
        self._global_step = tf.compat.v1.train.get_global_step()
        if self._output_dir:
            self._writer = tf.compat.v1.summary.FileWriterCache.get(self._output_dir)

    def before_run(self, run_context):
        self._start = time.perf_counter()
        return tf.compat.v1.train.SessionRunArgs(self._global_step)

    def after_run(self, run_context, run_values) -> None:
        elapsed = time.perf_counter() - self._start
        self.steps += 1
        if self.steps > 1:  # the first step builds and warms up the graph
            self.seconds += elapsed
            self._window_start += elapsed
            self._window_steps += 1
        if self._writer is not None and self._window_steps >= self._every:
            rate = self._window_steps * self._batch_size * self._scale / self._window_start
            summary = tf.compat.v1.Summary(
                value=[tf.compat.v1.Summary.Value(tag="examples_per_sec", simple_value=rate)]
            )
            self._writer.add_summary(summary, run_values.results)
            self._window_start, self._window_steps = 0.0, 0

    @property
    def examples_per_second(self) -> float:
        """This rank's examples per second over the timed steps (0 when fewer than 2 steps ran)."""
        timed = self.steps - 1
        return timed * self._batch_size / self.seconds if timed > 0 and self.seconds > 0 else 0.0
