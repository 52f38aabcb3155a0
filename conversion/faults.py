"""Test-only fault injection, the same for every writer: the first attempt of the first task
fails after N records, so tests can check that a retried task writes every record once."""

from __future__ import annotations

from typing import Any

FAULT_CONF = "spark.tfrecordpipe.test.failOnceAfterRecords"


class InjectedFault(RuntimeError):
    """Raised mid-write by the test-only fault injection."""


def fault_from_conf(spark: Any) -> int | None:
    """The record count after which the first task's first attempt fails, if the test set one."""
    value = spark.conf.get(FAULT_CONF, None)
    return int(value) if value else None


def should_fail(fail_after: int | None, partition: int, attempt: int, written: int) -> bool:
    """Whether the task should fail now (runs on executors): `partition` 0 is the first task."""
    return fail_after is not None and partition == 0 and attempt == 0 and written >= fail_after
