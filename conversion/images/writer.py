"""Executor side: read, check and encode the files of one shard, and write it to staging."""

from __future__ import annotations

import contextlib
import time
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from fsspec.spec import AbstractBufferedFile

from conversion.faults import PAUSED_MARKER, InjectedFault, should_fail
from conversion.images.check import ImageRecord, Rejected, check_image
from conversion.images.discovery import Skip
from conversion.images.options import ImageTransform
from conversion.images.plan import ShardPlan
from conversion.images.records import image_example
from dataset.fs import filesystem
from dataset.layout import index_file_name
from dataset.reads import DEFAULT_READ_CONCURRENCY, read_files
from dataset.record_index import render_index
from dataset.tfrecord import TFRecordFileWriter


@dataclass(frozen=True)
class ShardJob:
    """What every shard task shares (small and picklable)."""

    input_url: str
    staging_url: str
    labels: tuple[str, ...]
    transform: ImageTransform
    fail_once_after: int | None = None  # test-only: the first attempt of task 0 fails after N records (or at its end)
    final_names: bool = False  # write `<name>` itself (a run folder, see conversion.publish), not an attempt file
    read_concurrency: int = DEFAULT_READ_CONCURRENCY  # image reads in flight per task (object stores)
    pause_after: int | None = None  # test-only: task 0 stops after N records, mid-write, to be killed there


@dataclass(frozen=True)
class ShardResult:
    """What a finished shard task reports to the driver."""

    split: str
    index: int
    name: str
    tmp_path: str
    num_records: int
    num_bytes: int
    input_bytes: int
    rejects: tuple[Skip, ...]
    label_counts: dict[int, int] = field(default_factory=dict)
    converted: dict[str, int] = field(default_factory=dict)  # original format → files stored as PNG
    turned: dict[str, int] = field(default_factory=dict)  # original format → files turned upright (EXIF)
    first_frame_only: dict[str, int] = field(default_factory=dict)  # original format → multi-frame files
    warnings: tuple[tuple[str, str], ...] = ()  # (relpath, Pillow's warning) of the files written
    seconds: float = 0.0
    cpu_s: float = 0.0  # the task process's CPU time while it wrote this shard
    attempt: int = 0
    record_index: str | None = None  # `<name>.idx` (uncompressed shards; gzip has none: dataset.record_index)
    record_index_tmp: str | None = None  # where it was written: beside `tmp_path`, renamed with it


WRITE_BATCH = 1 << 20  # bytes of framed records handed to the output stream at once


class BatchedWrites:
    """Passes writes on to `raw` in batches of about `WRITE_BATCH` bytes: a local file's 8 KB buffer would make a
    system call for nearly every framed record of a few KB. `close` (or `flush`) writes what is held; after an
    error nothing held is written (the output is thrown away then, see `discarded_on_error`)."""

    def __init__(self, raw: Any, batch: int = WRITE_BATCH) -> None:
        self._raw = raw
        self._batch = batch
        self._held: list[bytes] = []
        self._size = 0

    def write(self, data: bytes) -> int:
        self._held.append(data)
        self._size += len(data)
        if self._size >= self._batch:
            self._pass_on()
        return len(data)

    def _pass_on(self) -> None:
        if self._held:
            self._raw.write(self._held[0] if len(self._held) == 1 else b"".join(self._held))
            self._held, self._size = [], 0

    def flush(self) -> None:
        self._pass_on()
        self._raw.flush()

    def close(self) -> None:
        self._pass_on()
        self._raw.close()


def write_shard(
    plan: ShardPlan, job: ShardJob, attempt_tag: str, attempt: int = 0, partition: int = 0, first: bool = True
) -> ShardResult:
    """Write one shard as `<staging>/<name>.tmp-<attempt_tag>` (the driver renames the winner), or as
    `<output>/<name>` with `job.final_names` (a failed attempt leaves no object; a retry writes the same bytes).

    `attempt` is Spark's attempt number of the task (0 unless it was retried); `partition` and
    `first` (the task's first shard) place it for the test-only fault injection.
    """
    fail_after = job.fail_once_after if first else None
    fail_here = should_fail(fail_after, partition, attempt, fail_after or 0)  # test-only: this task fails
    pause_after = job.pause_after if partition == 0 else None  # test-only
    start, cpu_start = time.perf_counter(), time.process_time()
    fs_in, root = filesystem(job.input_url)
    fs_out, staging = filesystem(job.staging_url)
    tmp_path = f"{staging}/{plan.name}" if job.final_names else f"{staging}/{plan.name}.tmp-{attempt_tag}"
    rejects: list[Skip] = []
    labels: Counter[int] = Counter()
    converted: Counter[str] = Counter()
    turned: Counter[str] = Counter()
    first_frame_only: Counter[str] = Counter()
    warned: list[tuple[str, str]] = []
    input_bytes = 0
    raw = fs_out.open(tmp_path, "wb")
    batched = BatchedWrites(raw)
    writer = TFRecordFileWriter(batched, plan.compression)  # type: ignore[arg-type]
    files = list(plan.files)  # a TaskPlan's files are built as they are read: once
    reads = read_files(fs_in, (f"{root}/{task.relpath}" for task in files), job.read_concurrency)
    try:
        with discarded_on_error(raw), recorded_warnings() as caught:  # closed below only when every record is in
            for task, (_, data) in zip(files, reads):
                if fail_here and should_fail(fail_after, partition, attempt, writer.num_records):
                    raise InjectedFault(f"injected failure in {plan.name} after {fail_after} records")
                if isinstance(data, OSError):
                    rejects.append(Skip(task.relpath, "unreadable", f"{type(data).__name__}: {data.strerror or data}"))
                    continue
                input_bytes += len(data)
                image, said = checked(data, job, caught)
                if isinstance(image, Rejected):
                    detail = "; ".join([image.detail, *(f"Pillow warned: {text}" for text in said)])
                    rejects.append(Skip(task.relpath, image.reason, detail.lstrip("; ")))
                    continue
                writer.write(image_example(image, task.label_id, job.labels[task.label_id], task.relpath))
                labels[task.label_id] += 1
                if pause_after is not None and writer.num_records == pause_after:
                    _pause(batched, fs_out, staging)
                if said:
                    warned.extend((task.relpath, text) for text in said)
                original = image.source_format or image.format
                if image.source_format:
                    converted[image.source_format] += 1
                if image.turned != 1:
                    turned[original] += 1
                if image.frames > 1:
                    first_frame_only[original] += 1
            if fail_here:  # a shorter shard fails before closing
                raise InjectedFault(f"injected failure in {plan.name} at its end")
            num_records = writer.num_records
            writer.close()
        record_index, index_tmp = None, None
        if plan.compression == "none":  # from the offsets just written, no second read
            record_index = index_file_name(plan.name)
            index_tmp = f"{staging}/{record_index}" + ("" if job.final_names else f".tmp-{attempt_tag}")
            fs_out.pipe_file(index_tmp, render_index(writer.spans))
    except OSError as err:  # the output's storage: say which file it refused (a full disk names none)
        if err.filename:
            raise
        raise OSError(err.errno, err.strerror, tmp_path) from None
    return ShardResult(
        split=plan.split,
        index=plan.index,
        name=plan.name,
        tmp_path=tmp_path,
        num_records=num_records,
        num_bytes=fs_out.size(tmp_path),
        input_bytes=input_bytes,
        rejects=tuple(rejects),
        label_counts=dict(labels),
        converted=dict(converted),
        turned=dict(turned),
        first_frame_only=dict(first_frame_only),
        warnings=tuple(warned),
        seconds=time.perf_counter() - start,
        cpu_s=time.process_time() - cpu_start,
        attempt=attempt,
        record_index=record_index,
        record_index_tmp=index_tmp,
    )


def _pause(raw: Any, fs_out: Any, staging: str) -> None:
    """Test-only: make what is written so far visible, say so in the run folder, and wait to be killed."""
    raw.flush()
    fs_out.pipe_file(f"{staging}/{PAUSED_MARKER}", b"")
    time.sleep(3600)


@contextlib.contextmanager
def recorded_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """Record every warning raised in the block (none printed), for `checked` to read per file: one
    `catch_warnings` per shard instead of one per file."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught  # type: ignore[misc]


def checked(
    data: bytes, job: ShardJob, caught: list[warnings.WarningMessage] | None = None
) -> tuple[ImageRecord | Rejected, list[str]]:
    """`check_image`'s record (or rejection) and the warnings Pillow raised on the way, which would otherwise
    print on the executor's console: the summary and the rejected report carry them instead.

    `caught`: the list of an enclosing `recorded_warnings` block (emptied first); without it, the call records
    its own."""
    if caught is None:
        with recorded_warnings() as caught:
            return checked(data, job, caught)
    caught.clear()
    try:
        image: ImageRecord | Rejected = check_image(data, job.transform)
    except Rejected as rejected:
        image = rejected
    said = list(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught)) if caught else []
    return image, said  # each once, in order


@contextlib.contextmanager
def discarded_on_error(raw: Any) -> Iterator[None]:
    """On an error, throw `raw`'s upload away instead of letting close() publish a partial object (object stores;
    fsspec's buffered files finish the upload on close, even on an exception). Local files close as usual."""
    try:
        yield
    except BaseException:
        if isinstance(raw, AbstractBufferedFile) and not raw.closed:
            raw.discard()  # s3fs: aborts the multipart upload; a small file was never sent
            raw.closed = True  # close() (at garbage collection) must not upload what is left
        else:
            raw.close()  # an attempt file in the staging folder, removed at commit or abort
        raise


def run_task(
    job: ShardJob, partition: int, groups: Iterable[Iterable[ShardPlan]], counters: tuple | None = None
) -> Iterator[ShardResult]:
    """The body of one Spark task: write each shard of its group (a `TaskPlan`, read as it goes; runs on executors).

    `counters`: accumulators of (files, bytes read, rejects) for the driver's progress lines.
    """
    from pyspark import TaskContext

    context = TaskContext.get()
    attempt = context.attemptNumber()
    for group in groups:
        for position, plan in enumerate(group):
            result = write_shard(plan, job, str(context.taskAttemptId()), attempt, partition, position == 0)
            if counters is not None:
                for counter, value in zip(counters, (len(plan.files), result.input_bytes, len(result.rejects))):
                    counter.add(value)
            yield result


def warm_up(_: object) -> None:
    """A no-op task that makes a Python worker import this module ahead of the real tasks."""
