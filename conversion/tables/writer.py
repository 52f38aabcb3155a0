"""Executor side of the table conversion: Arrow batches of rows → TFRecord shard files."""

from __future__ import annotations

import decimal
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from conversion.example_proto import bytes_feature, delimited, feature_key, float_feature, int64_feature
from conversion.faults import InjectedFault, should_fail
from conversion.tables.schema import ColumnSpec
from dataset.fs import filesystem
from dataset.tfrecord import TFRecordFileWriter

SHARD_COLUMN = "_shard"
_FLOAT = struct.Struct("<f")
RESULT_DDL = "shard long, tmp_path string, num_records long, num_bytes long, attempt long"
RESULT_SCHEMA = pa.schema(
    [
        ("shard", pa.int64()),
        ("tmp_path", pa.string()),
        ("num_records", pa.int64()),
        ("num_bytes", pa.int64()),
        ("attempt", pa.int64()),
    ]
)


@dataclass(frozen=True)
class TableShardJob:
    """What every table shard task shares: the columns, the shard names and where staging is."""

    columns: tuple[ColumnSpec, ...]
    shard_names: tuple[str, ...]  # index = global shard number
    staging_url: str
    compression: str = "none"
    fail_once_after: int | None = None  # test-only, as for images


def _encoder(column: ColumnSpec) -> Callable[[Any], bytes]:
    if column.dtype == "int64":
        return (lambda v: int64_feature([int(x) for x in v])) if column.is_list else (lambda v: int64_feature([int(v)]))
    if column.dtype == "float32":
        return (
            (lambda v: float_feature([float(x) for x in v]))
            if column.is_list
            else (lambda v: float_feature([float(v)]))
        )

    def text(value: Any) -> bytes:
        return value if isinstance(value, bytes) else str(value).encode("utf-8")

    return (lambda v: bytes_feature([text(x) for x in v])) if column.is_list else (lambda v: bytes_feature([text(v)]))


def _entries(column: ColumnSpec, values: list, key: bytes) -> list[bytes]:
    """The serialized feature-map entry of every value of one column (column at a time, memoized)."""
    if column.dtype == "float32" and not column.is_list:
        prefix = delimited(0x0A, key + delimited(0x12, float_feature([0.0])))[:-4]  # fixed size: value last
        pack = _FLOAT.pack
        return [prefix + pack(float(v)) for v in values]
    encode = _encoder(column)
    if column.is_list:
        return [delimited(0x0A, key + delimited(0x12, encode(v))) for v in values]
    cache: dict[Any, bytes] = {}
    out = []
    for v in values:
        entry = cache.get(v)
        if entry is None:
            entry = cache[v] = delimited(0x0A, key + delimited(0x12, encode(v)))
        out.append(entry)
    return out


def write_table_shards(job: TableShardJob, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """mapInArrow body: rows arrive grouped by shard and ordered; each shard becomes one temporary file."""
    from pyspark import TaskContext

    context = TaskContext.get()
    attempt = context.attemptNumber()
    fs, staging = filesystem(job.staging_url)
    # Example map entries go in sorted key order, as `example_from_features` writes them.
    ordered = sorted(job.columns, key=lambda c: c.name)
    keys = [feature_key(c.name) for c in ordered]
    results: list[dict[str, Any]] = []
    writer: TFRecordFileWriter | None = None
    current, path, written_total = -1, "", 0

    def close() -> None:
        if writer is not None:
            writer.close()
            results.append(
                {
                    "shard": current,
                    "tmp_path": path,
                    "num_records": writer.num_records,
                    "num_bytes": fs.size(path),
                    "attempt": attempt,
                }
            )

    try:
        for batch in batches:
            shards = batch.column(SHARD_COLUMN).to_pylist()
            columns = [_entries(c, _plain(batch.column(c.name).to_pylist()), k) for c, k in zip(ordered, keys)]
            for row, entries in enumerate(zip(*columns)):
                shard = shards[row]
                if shard != current:
                    close()
                    current = shard
                    path = f"{staging}/{job.shard_names[shard]}.tmp-{context.taskAttemptId()}"
                    writer = TFRecordFileWriter(fs.open(path, "wb"), job.compression)
                # the task writing shard 0 plays "the first task" (Spark's partition 0 may hold no rows)
                if should_fail(job.fail_once_after, current, attempt, written_total):
                    raise InjectedFault(f"injected failure after {written_total} rows")
                writer.write(delimited(0x0A, b"".join(entries)))
                written_total += 1
    except BaseException:
        if writer is not None:
            writer.close()  # the task failed: free the handle; the driver ignores this attempt's file
        raise
    close()
    yield pa.RecordBatch.from_pylist(results, schema=RESULT_SCHEMA)


def _plain(values: list) -> list:
    """Decimals as floats (the only Arrow type whose Python value the encoders do not take)."""
    return (
        [float(v) if isinstance(v, decimal.Decimal) else v for v in values]
        if any(isinstance(v, decimal.Decimal) for v in values[:1])
        else values
    )
