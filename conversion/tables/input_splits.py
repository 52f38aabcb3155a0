"""How a table job's passes split its input files into tasks: enough tasks that the cores end together.

Spark packs files into read tasks of at most `total bytes / spark.sql.files.minPartitionNum` (default: the
cores), so 8 equal Parquet files on 2 cores become 3 tasks (4 files and their open cost do not fit in half the
bytes): the third runs alone while a core idles, a third of each pass's read. Asking for SPLITS_PER_CORE tasks
a core makes the last wave a small share of the pass. Spark only ever splits files at their row groups (Parquet)
or lines, so the rows and what is written from them do not change, only how many tasks read them.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from pyspark.sql import SparkSession

from conversion.session_settings import session_setting

MIN_PARTITIONS = "spark.sql.files.minPartitionNum"
SPLITS_PER_CORE = 4  # 2,000,000 rows in 8 Parquet files on 2 cores: 8 tasks of one file instead of 3 of 2-3 files


def balanced_input_splits(spark: SparkSession) -> AbstractContextManager[None]:
    """Within the block, file reads planned into SPLITS_PER_CORE tasks a core (the session's default parallelism),
    unless the session sets MIN_PARTITIONS itself; the session's setting is restored after."""
    tasks = SPLITS_PER_CORE * spark.sparkContext.defaultParallelism
    return session_setting(spark, MIN_PARTITIONS, str(tasks), unless_set=True)
