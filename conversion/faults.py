"""Test-only fault injection, the same for every writer: the first attempt of the first task
fails after N records, so tests can check that a retried task writes every record once.

Python writers (images) call `should_fail` per record. The table writer has no Python on its
row path, so `fail_once_column` builds the same failure as a Spark SQL expression that the JVM
evaluates per record, between the records the spark-tfrecord writer has already written.
"""

from __future__ import annotations

from typing import Any

FAULT_CONF = "spark.tfrecordpipe.test.failOnceAfterRecords"
FAULT_MESSAGE = "injected failure"
PAUSE_CONF = "spark.tfrecordpipe.test.pauseAfterRecords"  # the first task stops mid-write, for a kill
PAUSED_MARKER = "_paused"  # written into the run folder when it stops there


class InjectedFault(RuntimeError):
    """Raised mid-write by the test-only fault injection."""


def fault_from_conf(spark: Any) -> int | None:
    """The record count after which the first task's first attempt fails, if the test set one."""
    value = spark.conf.get(FAULT_CONF, None)
    return int(value) if value else None


def pause_from_conf(spark: Any) -> int | None:
    """The record count after which the first task writes `PAUSED_MARKER` and sleeps (test-only: a test kills the
    process there, mid-write)."""
    value = spark.conf.get(PAUSE_CONF, None)
    return int(value) if value else None


def should_fail(fail_after: int | None, partition: int, attempt: int, written: int) -> bool:
    """Whether the task should fail now (runs on executors): `partition` 0 is the first task."""
    return fail_after is not None and partition == 0 and attempt == 0 and written >= fail_after


def fail_once_column(column: Any, fail_after: int, run_id: str) -> Any:
    """`column`, except that record `fail_after` of partition 0 raises, once per executor JVM.

    Must be projected after the last sort/shuffle, so that the records before it in the task
    are already in the writer's file when it raises. "Once" is a JVM system property
    (`tfrecordpipe.fault.<run_id>`), set by `reflect` (which returns the old value as text,
    "null" the first time): in local mode every attempt runs in the driver's JVM, so the retry
    passes. On a cluster a retry on another executor would fail again: this is for local tests.
    """
    from pyspark.sql import functions as F

    first_time = F.expr(
        f"reflect('java.lang.System', 'setProperty', 'tfrecordpipe.fault.{run_id}', "
        "cast(spark_partition_id() as string)) = 'null'"  # a column argument: not constant-folded
    )
    fires = (F.spark_partition_id() == 0) & (F.monotonically_increasing_id() == fail_after) & first_time
    message = f"{FAULT_MESSAGE} after {fail_after} records"
    return F.when(fires, F.raise_error(F.lit(message))).otherwise(column)
