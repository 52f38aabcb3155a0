"""Shard plans handed to Spark tasks by reference, so that a task's payload does not grow with its files.

The driver writes each task's shards to one Arrow IPC file, `<staging>/_plan/task-NNNNN.arrow`: a record batch
per shard (relpath, size, label_id in write order) and the shards' names in the schema's metadata. The task
receives a `TaskPlan` (its URL: a few hundred bytes pickled, whatever the file count) and reads one shard's
batch at a time. On an object store that is one PUT per task on the driver and a ranged GET per shard in the
task, against the thousands of image GETs of the shard itself; Spark's driver JVM never holds the file lists.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pyarrow as pa

from conversion.images.plan import FILE_SCHEMA, FileTable, ShardFiles, ShardPlan, shard_table
from dataset.fs import filesystem

PLAN_FOLDER = "_plan"  # in the staging folder (the output itself on object stores); removed before the commit
SHARDS_KEY = b"shards"  # schema metadata: JSON [[split, index, num_shards, compression, tag], ...], one per batch
PLAN_WRITERS = 16  # task files written at once (object stores: one PUT each)


def _write_options() -> pa.ipc.IpcWriteOptions:
    """Paths compress about 5x with zstd, where this pyarrow has it."""
    return pa.ipc.IpcWriteOptions(compression="zstd" if pa.Codec.is_available("zstd") else None)


@dataclass(frozen=True)
class TaskPlan:
    """The shards of one Spark task, by reference: iterating reads them from `url`, one shard's files at a time."""

    url: str
    num_shards: int
    num_files: int

    def __iter__(self) -> Iterator[ShardPlan]:
        fs, path = filesystem(self.url)
        with fs.open(path, "rb") as raw:
            reader = pa.ipc.open_file(raw)
            shards = json.loads(reader.schema.metadata[SHARDS_KEY])
            for number, (split, index, num_shards, compression, tag) in enumerate(shards):
                files = ShardFiles.of(FileTable.from_batch(reader.get_batch(number)))
                yield ShardPlan(split, index, num_shards, files, compression, tag)


def plan_folder(staging_url: str) -> str:
    return f"{staging_url.rstrip('/')}/{PLAN_FOLDER}"


def write_task_plans(tasks: Sequence[Sequence[ShardPlan]], staging_url: str) -> list[TaskPlan]:
    """Write each task's shards to its file under `plan_folder(staging_url)`; the `TaskPlan`s to send."""
    fs, folder = filesystem(plan_folder(staging_url))
    fs.makedirs(folder, exist_ok=True)
    options = _write_options()

    def write(number: int) -> TaskPlan:
        plans = tasks[number]
        path = f"{folder}/task-{number:05d}.arrow"
        shards = [[plan.split, plan.index, plan.num_shards, plan.compression, plan.tag] for plan in plans]
        schema = FILE_SCHEMA.with_metadata({SHARDS_KEY: json.dumps(shards).encode()})
        with fs.open(path, "wb") as out, pa.ipc.new_file(out, schema, options=options) as writer:
            for plan in plans:
                writer.write_batch(shard_table(plan.files).to_batch())
        return TaskPlan(fs.unstrip_protocol(path), len(plans), sum(len(plan.files) for plan in plans))

    with ThreadPoolExecutor(max(1, min(PLAN_WRITERS, len(tasks))), thread_name_prefix="plan") as pool:
        return list(pool.map(write, range(len(tasks))))


def remove_task_plans(staging_url: str) -> None:
    """Remove the task files (before the commit: they are no part of the dataset)."""
    fs, folder = filesystem(plan_folder(staging_url))
    if fs.exists(folder):
        fs.rm(folder, recursive=True)
