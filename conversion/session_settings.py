"""A Spark SQL setting changed for the length of a block, the session's own restored after."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pyspark.sql import SparkSession


@contextmanager
def session_setting(spark: SparkSession, key: str, value: str, unless_set: bool = False) -> Iterator[None]:
    """Within the block, the session's `key` is `value` (with `unless_set`, only where the session does not set it
    itself); after, the session's own value again, or none."""
    before = spark.conf.get(key, None)
    if unless_set and before is not None:
        yield
        return
    spark.conf.set(key, value)
    try:
        yield
    finally:
        if before is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, before)
