"""Table records → shard files, in the JVM: spark-tfrecord writes `tf.train.Example`s from rows
that Spark SQL has typed, filled, sharded and ordered (no Python on the row path).

Shard i of the run is task i: the rows are repartitioned on a value whose hash bucket is i
(`bucket_values`), so each task writes exactly one shard, named by its task's partition number
(`part-0000i-...`), not guessed from listing order; every row checks on the way that its shard is the
partition writing it. Spark's commit protocol keeps one attempt's file per task; the part files are then
renamed to shard names inside the staging folder. (Not `partitionBy(shard)`: Spark would then sort every
shard by the shard column first, a sort key equal in all its rows, so every comparison of the records'
order would fall through to the whole key.)
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from conversion.faults import fail_once_column
from conversion.publish import Staging
from dataset.errors import ConversionError
from dataset.layout import index_file_name, shard_file_name
from dataset.record_index import write_index
from dataset.tfrecord import frames

SHARD_COLUMN = "_tfrecordpipe_shard"
PARTS_DIR = "_parts"  # Spark's output folder inside staging; removed once the shards are named
TFRECORD_FORMAT = "tfrecord"
GZIP_CODEC = "org.apache.hadoop.io.compress.GzipCodec"
COMMITTER_ALGORITHM = "mapreduce.fileoutputcommitter.algorithm.version"  # 2: a task commit moves its file once
_BUCKET = "_tfrecordpipe_bucket"
NO_TFRECORD_SOURCE = (
    "Spark has no 'tfrecord' data source: add spark-tfrecord for the session's Scala version (2.12 on Spark 3.5, "
    "2.13 on Spark 4), e.g. --packages com.linkedin.sparktfrecord:spark-tfrecord_2.13:0.7.0, --jars "
    "spark-tfrecord_2.13-0.7.0.jar or SPARK_TFRECORD_JAR, or on Databricks the Maven library of those coordinates"
)
_PART_FILE = re.compile(r"part-(\d+)-")


@dataclass(frozen=True)
class ShardPlan:
    """How many shards each split has, and where its shards start in the run's global numbering."""

    counts: tuple[tuple[str, int], ...]  # (split, shards), sorted by split
    compression: str = "none"

    @property
    def total(self) -> int:
        return sum(n for _, n in self.counts)

    def offset(self, split: str) -> int:
        start = 0
        for name, n in self.counts:
            if name == split:
                return start
            start += n
        raise KeyError(split)

    def names(self) -> tuple[str, ...]:
        """Shard file names by global shard number."""
        return tuple(shard_file_name(s, i, n, self.compression) for s, n in self.counts for i in range(n))

    def shard_column(self, split: Column, row_hash: Column) -> Column:
        """A row's global shard number: its split's offset + a hash of the row's key hash mod the split's count."""
        offset = F.create_map(*[x for s, _ in self.counts for x in (F.lit(s), F.lit(self.offset(s)))])
        count = F.create_map(*[x for s, n in self.counts for x in (F.lit(s), F.lit(n))])
        return offset[split] + F.pmod(shard_hash(row_hash), count[split])

    def records(self, bucket_counts: dict[tuple[str, int], int], buckets: int) -> dict[int, int] | None:
        """Records per global shard from rows counted per (split, `bucket_column(row_hash, buckets)`),
        or None if some split's shard count does not divide `buckets` (a row's shard is then not
        a function of its bucket)."""
        if any(buckets % n for _, n in self.counts):
            return None
        records: dict[int, int] = {}
        sizes = dict(self.counts)
        for (split, bucket), count in bucket_counts.items():
            shard = self.offset(split) + bucket % sizes[split]
            records[shard] = records.get(shard, 0) + count
        return records


def shard_hash(row_hash: Column) -> Column:
    """The hash that picks a row's shard within its split (mod the split's shard count)."""
    return F.xxhash64(row_hash, F.lit("shard"))


def bucket_column(row_hash: Column, buckets: int) -> Column:
    """The row's shard hash mod `buckets`: its shard mod any shard count that divides `buckets`."""
    return F.pmod(shard_hash(row_hash), F.lit(buckets))


_MASK32 = 0xFFFFFFFF


def _rotl32(value: int, bits: int) -> int:
    return ((value << bits) | (value >> (32 - bits))) & _MASK32


def _mix(h1: int, k1: int) -> int:
    k1 = _rotl32((k1 * 0xCC9E2D51) & _MASK32, 15) * 0x1B873593 & _MASK32
    return (_rotl32(h1 ^ k1, 13) * 5 + 0xE6546B64) & _MASK32


def spark_hash_long(value: int, seed: int = 42) -> int:
    """Spark's `hash(value)` of a long (Murmur3_x86_32.hashLong, seed 42), as the signed int Spark returns."""
    h1 = _mix(_mix(seed, value & _MASK32), (value >> 32) & _MASK32)
    h1 ^= 8
    h1 ^= h1 >> 16
    h1 = (h1 * 0x85EBCA6B) & _MASK32
    h1 ^= h1 >> 13
    h1 = (h1 * 0xC2B2AE35) & _MASK32
    h1 ^= h1 >> 16
    return h1 - (1 << 32) if h1 >= 1 << 31 else h1


def bucket_values(total: int) -> list[int]:
    """For every bucket i < `total`, a long whose Spark hash partition among `total` is i (the smallest).

    `repartition(total, column)` puts a row in partition pmod(murmur3(column, 42), total), the
    same as `pmod(hash(column), total)`; repartitioning on these values makes partition i hold
    shard i alone (one shard per task, none shared, none split). Computed here, without a Spark job
    (`tests/test_table_reads.py` checks the hash against Spark's).

    Raises:
        ConversionError: some bucket has no value in the range tried (not seen with Spark's hash).
    """
    found: dict[int, int] = {}
    for value in range(64 * total):  # misses a bucket with probability about total * e**-64
        found.setdefault(spark_hash_long(value) % total, value)
        if len(found) == total:
            break
    if len(found) != total:
        raise ConversionError(f"no hash value found for {total - len(found)} of {total} shard partitions")
    return [found[i] for i in range(total)]


def shard_count_aggregates(total: int) -> list[Column]:
    """Rows per global shard, as aggregates to observe on the write (`shard_records` reads them back): for the odd
    plan whose shard counts the survey's buckets do not give."""
    shard = F.col(SHARD_COLUMN)
    return [F.sum(F.when(shard == i, 1).otherwise(0).cast("long")).alias(f"shard_{i}") for i in range(total)]


def shard_records(observed: dict[str, int]) -> dict[int, int]:
    """{shard: rows} of the non-empty shards from `shard_count_aggregates`' observed values."""
    return {int(name.split("_")[1]): int(n) for name, n in observed.items() if n}


@dataclass(frozen=True)
class WrittenShards:
    sizes: dict[int, int]  # bytes of each non-empty shard's file, by global shard number
    failed_tasks: int  # task attempts of the write that failed (and were retried)


def write_shards(
    spark: SparkSession,
    rows: DataFrame,
    schema: T.StructType,
    plan: ShardPlan,
    staging: Staging,
    fail_after: int | None = None,
) -> WrittenShards:
    """Write `rows` (the record columns of `schema` and `SHARD_COLUMN`, from `ordered`) as one
    file per shard (partition 0's, and the non-empty ones), named as the shard, in the staging folder.

    The records' columns are cast to `schema` (the manifest's) and written in its order.

    Raises:
        ConversionError: Spark wrote more than one file for a shard; (in the write) a row reached another
            partition than its shard's.
    """
    columns = [F.col(f"`{f.name}`").cast(f.dataType).alias(f.name) for f in schema.fields]
    misplaced = F.raise_error(
        F.format_string("a row of shard %d reached partition %d", F.col(SHARD_COLUMN), F.spark_partition_id())
    )
    first = schema.fields[0].name
    columns[0] = F.when(F.col(SHARD_COLUMN) == F.spark_partition_id(), columns[0]).otherwise(misplaced).alias(first)
    if fail_after is not None:  # test-only: fails the first attempt of task 0 mid-write
        columns[0] = fail_once_column(columns[0], fail_after, posixpath.basename(staging.path)).alias(first)
    writer = (
        rows.select(*columns)
        .write.format(TFRECORD_FORMAT)
        .option("recordType", "Example")
        # A task's commit moves its file into the output, not into a job folder that the job's commit moves
        # again: on an object store, where a move is a copy, one copy per shard fewer. Safe here: the staging
        # (or in-place) output is trusted only once the manifest is written.
        .option(COMMITTER_ALGORITHM, "2")
    )
    if plan.compression == "gzip":
        writer = writer.option("codec", GZIP_CODEC)
    parts = f"{staging.path}/{PARTS_DIR}"
    before = _job_ids(spark)
    try:  # one file per task whatever spark.sql.files.maxRecordsPerFile says
        writer.option("maxRecordsPerFile", 0).save(staging.url(parts))
    except Exception as err:  # AnalysisException [DATA_SOURCE_NOT_FOUND]: the jar is not in the session
        if "DATA_SOURCE_NOT_FOUND" not in str(err):
            raise
        raise ConversionError(NO_TFRECORD_SOURCE) from None
    failed = _failed_tasks(spark, before)
    return WrittenShards(_name_shards(staging, parts, plan.names()), failed)


def _job_ids(spark: SparkSession) -> set[int]:
    """The ids of the jobs Spark knows in this thread's job group (the group is left as it is)."""
    sc = spark.sparkContext
    return set(sc.statusTracker().getJobIdsForGroup(sc.getLocalProperty("spark.jobGroup.id")))


def _failed_tasks(spark: SparkSession, before: set[int]) -> int:
    """Failed task attempts in the jobs started since `before` (a retried task counts once per failure)."""
    tracker = spark.sparkContext.statusTracker()
    failed = 0
    for job in _job_ids(spark) - before:
        info = tracker.getJobInfo(job)
        for stage in info.stageIds if info else ():
            stage_info = tracker.getStageInfo(stage)
            failed += stage_info.numFailedTasks if stage_info else 0
    return failed


def ordered(rows: DataFrame, buckets: list[int], order: list[str]) -> DataFrame:
    """`rows` in `len(buckets)` partitions, partition i holding shard i, sorted by `order` inside (the shard
    column left out of the sort: it is the same in every row of a partition)."""
    bucket = F.array(*[F.lit(v).cast("long") for v in buckets])[F.col(SHARD_COLUMN).cast("int")]
    return (
        rows.withColumn(_BUCKET, bucket).repartition(len(buckets), _BUCKET).drop(_BUCKET).sortWithinPartitions(*order)
    )


def _name_shards(staging: Staging, parts: str, names: tuple[str, ...]) -> dict[int, int]:
    """Move each `part-<i>-*` file (written by partition i, which holds shard i alone) to shard name i;
    {shard: bytes}.

    Raises:
        ConversionError: a partition wrote more than one file, or its number names no shard.
    """
    fs = staging.fs
    written: dict[int, int] = {}
    files: dict[int, list[dict]] = {}
    for info in fs.ls(parts, detail=True):
        match = _PART_FILE.match(posixpath.basename(info["name"].rstrip("/")))
        if match is not None:  # not _SUCCESS, checksums
            files.setdefault(int(match.group(1)), []).append(info)
    for shard, found in sorted(files.items()):
        if len(found) != 1 or shard >= len(names):
            raise ConversionError(f"Spark wrote {len(found)} files for shard {shard} in {parts}; expected one")
        fs.mv(found[0]["name"], f"{staging.path}/{names[shard]}")
        written[shard] = int(found[0]["size"])  # from the listing: no request per shard to ask again
    fs.rm(parts, recursive=True)
    return written


def write_indexes(
    spark: SparkSession, staging: Staging, names: tuple[str, ...], records: dict[int, tuple[int, int]]
) -> dict[str, str]:
    """Write `<shard>.idx` beside each uncompressed shard spark-tfrecord wrote (one Spark task and one read per
    shard: the writer gives no offsets); shard name → its index's name.

    The frames are walked by their lengths, their CRCs not computed (`dataset.record_index.frame_lengths`: a
    fraction of the CPU of checking both CRCs of every record in Python): spark-tfrecord framed them moments ago in
    this job, the walk must end exactly at the file's end and find the records counted for the shard, and
    `validate` checks every CRC of a dataset read later.

    Raises:
        ConversionError: a shard's frames are not the records counted for it (`records`: index → (count, bytes)).
    """
    pairs = [(staging.url(f"{staging.path}/{n}"), staging.url(f"{staging.path}/{index_file_name(n)}")) for n in names]
    _check_counts(spark, pairs, lambda pair: write_index(*pair, check_crcs=False), names, records)
    return {name: index_file_name(name) for name in names}


def _check_counts(
    spark: SparkSession,
    shards: list,
    count: Callable[[Any], int],
    names: tuple[str, ...],
    records: dict[int, tuple[int, int]],
) -> None:
    """`count` each of `shards` (one read per shard, in at most two Spark tasks a core, shards grouped by their
    bytes) and compare with the records counted for it (`records`: index → (count, bytes)).

    Raises:
        ConversionError: a shard holds another number of records.
    """
    groups = shard_groups([records[i][1] for i in range(len(shards))], 2 * spark.sparkContext.defaultParallelism)
    tasks = [[(i, shards[i]) for i in group] for group in groups]
    # One group per partition of a range; through mapInArrow, whose Python workers the survey has started (an RDD
    # job's first tasks start their own: 0.6 s more on a fresh session). The range in SQL: `spark.range` builds a
    # typed Dataset, 0.65 s on a fresh session against 0.04 s.
    group_ids = spark.sql(f"SELECT id FROM range(0, {len(tasks)}, 1, {max(1, len(tasks))})")
    found = group_ids.mapInArrow(_GroupCounts(tasks, count), _COUNTED)
    counts = [row["records"] for row in sorted(found.collect(), key=lambda row: row["shard"])]
    for index, (name, got) in enumerate(zip(names, counts)):
        if got != records[index][0]:
            raise ConversionError(f"shard {name} holds {got} records, {records[index][0]} were written to it")


_COUNTED = "shard long, records long"


@dataclass(frozen=True)
class _GroupCounts:
    """`mapInArrow`'s function: the ids of groups of `tasks` in, `count` of each of their shards out."""

    tasks: list
    count: Callable[[Any], int]

    def __call__(self, batches: Iterator[Any]) -> Iterator[Any]:
        import pyarrow as pa

        for batch in batches:
            pairs = [(i, self.count(shard)) for group in batch.column(0).to_pylist() for i, shard in self.tasks[group]]
            yield pa.RecordBatch.from_pydict(
                {"shard": [i for i, _ in pairs], "records": [n for _, n in pairs]},
                schema=pa.schema([("shard", pa.int64()), ("records", pa.int64())]),
            )


def shard_groups(sizes: list[int], most: int) -> list[list[int]]:
    """The shards (by index, of `sizes` bytes) in at most `most` groups of about equal bytes, the largest shards
    placed first, each into the lightest group (of two as light, the one of fewer shards); no empty group. A task
    a group: each Spark task costs about 0.1 s of its own (24 shards of a 2,000,000-row table took 3.5 s in 24
    tasks on 2 cores)."""
    groups: list[list[int]] = [[] for _ in range(max(1, min(most, len(sizes))))]
    loads = [0] * len(groups)
    for index in sorted(range(len(sizes)), key=lambda i: (-sizes[i], i)):
        lightest = min(range(len(groups)), key=lambda g: (loads[g], len(groups[g])))
        groups[lightest].append(index)
        loads[lightest] += sizes[index]
    return [group for group in groups if group]


def _count_gzip_records(url: str) -> int:
    """The records of one gzip shard, every frame's CRCs checked (one read, decompressed as it streams)."""
    import fsspec

    with fsspec.open(url, "rb", compression="gzip") as stream:
        return sum(1 for _ in frames(stream, f"shard {url}"))


def check_gzip_counts(
    spark: SparkSession, staging: Staging, names: tuple[str, ...], records: dict[int, tuple[int, int]]
) -> None:
    """Count the records of each gzip shard after the write (one Spark task and one read per shard) where the
    counts came from metrics observed on the write, which Spark may sum over retried task attempts: a gzip shard
    has no index whose writing would check them.

    Raises:
        ConversionError: a shard holds another number of records than was counted for it.
    """
    _check_counts(spark, [staging.url(f"{staging.path}/{n}") for n in names], _count_gzip_records, names, records)
