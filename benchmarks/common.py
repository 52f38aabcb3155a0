"""What the benchmark scripts share: targets, a quiet TensorFlow import, the timed Spark start."""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from jobs.spark_cli import spark_session


@dataclass(frozen=True)
class Target:
    """A figure's goal: `value <op> limit`, op being ">=" or "<="."""

    op: str
    limit: float

    def met(self, value: float) -> bool:
        """Whether `value` reaches the target."""
        return value >= self.limit if self.op == ">=" else value <= self.limit

    def text(self, value: float) -> str:
        """`target >= 0.8  PASS` (or MISS)."""
        return f"target {self.op} {self.limit:g}  {'PASS' if self.met(value) else 'MISS'}"

    def as_dict(self, value: float) -> dict[str, Any]:
        """The target, the value and whether it is met, for results.json."""
        return {"op": self.op, "limit": self.limit, "value": value, "pass": self.met(value)}


def require_at_least(parser: argparse.ArgumentParser, args: argparse.Namespace, least: dict[str, int]) -> None:
    """Stop with a usage error when an option is below its least value (`least`: dest → value)."""
    for name, value in least.items():
        if getattr(args, name) < value:
            parser.error(f"--{name.replace('_', '-')} must be at least {value}")


def import_tensorflow(cpp_log_level: str = "3") -> ModuleType:
    """TensorFlow, imported quietly (outside every timer; child processes inherit the log level)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", cpp_log_level)
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.ERROR)
    return tf


def start_spark(args: argparse.Namespace, app_name: str, default_master: str) -> tuple[Any, float]:
    """The SparkSession configured like the jobs (`--master`, else `default_master`), and its start-up time."""
    args.master = args.master or default_master
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    start = time.perf_counter()
    spark = spark_session(args, app_name)
    spark.sparkContext.setLogLevel("ERROR")
    return spark, time.perf_counter() - start
