"""Executor side of the table conversion: Arrow batches of rows → TFRecord shard files."""

from __future__ import annotations

import decimal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from conversion.example_proto import bytes_feature, example_from_features, feature_key, float_feature, int64_feature
from conversion.listing import filesystem
from conversion.table_schema import ColumnSpec
from conversion.tfrecord_io import COMPRESSIONS, TFRecordFileWriter

SHARD_COLUMN = "_shard"
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


def write_table_shards(job: TableShardJob, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """mapInArrow body: rows arrive grouped by shard and ordered; each shard becomes one temporary file."""
    from pyspark import TaskContext

    context = TaskContext.get()
    attempt = context.attemptNumber()
    fs, staging = filesystem(job.staging_url)
    names = [c.name for c in job.columns]
    keys = {c.name: feature_key(c.name) for c in job.columns}
    encoders = [_encoder(c) for c in job.columns]
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

    for batch in batches:
        shards = batch.column(SHARD_COLUMN).to_pylist()
        values = [batch.column(name).to_pylist() for name in names]
        for row, shard in enumerate(shards):
            if shard != current:
                close()
                current = shard
                path = f"{staging}/{job.shard_names[shard]}.tmp-{context.taskAttemptId()}"
                writer = TFRecordFileWriter(fs.open(path, "wb"), job.compression)
            if (
                job.fail_once_after is not None
                and attempt == 0
                and context.partitionId() == 0
                and written_total >= job.fail_once_after
            ):
                raise RuntimeError(f"injected failure after {written_total} rows")
            features = {}
            for name, encode, column in zip(names, encoders, values):
                value = column[row]
                features[name] = encode(float(value) if isinstance(value, decimal.Decimal) else value)
            writer.write(example_from_features(features, keys))
            written_total += 1
    close()
    yield pa.RecordBatch.from_pylist(results, schema=RESULT_SCHEMA)


def shard_file_name(split: str, index: int, count: int, compression: str) -> str:
    return f"{split}-{index:05d}-of-{count:05d}.tfrecord{COMPRESSIONS[compression]}"
