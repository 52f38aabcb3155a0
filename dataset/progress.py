"""Progress lines a job's driver prints every few seconds while Spark runs its tasks.

    progress: 120/400 files (30%), 2.4 MB/s, 3 rejected, 0:00:12 left
    progress: 3/8 tasks (38%), 0:00:40 left
    progress: writing shards: 10/24 tasks (42%), 0:00:12 left

Figures come from accumulators that tasks add to (counted when a task finishes) or from Spark's status tracker
(tasks done of total in the running stages). `PROGRESS_SECONDS` sets the interval (default 10 s); a job's
``--quiet`` prints none.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from dataset.errors import OptionError

PROGRESS_SECONDS_VARIABLE = "PROGRESS_SECONDS"
DEFAULT_SECONDS = 10.0


def interval_seconds(quiet: bool = False, env: dict[str, str] | None = None) -> float | None:
    """The interval between progress lines: None with `quiet`, else `PROGRESS_SECONDS` (a positive number of
    seconds), else 10.

    Raises:
        OptionError: the variable is not a positive number.
    """
    if quiet:
        return None
    text = (os.environ if env is None else env).get(PROGRESS_SECONDS_VARIABLE, "").strip()
    if not text:
        return DEFAULT_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise OptionError(f"{PROGRESS_SECONDS_VARIABLE} must be a positive number of seconds, got {text!r}")
    return seconds


def _left(fraction: float, elapsed: float) -> str:
    if fraction <= 0:
        return "? left"
    return f"{datetime.timedelta(seconds=round(elapsed * (1 - fraction) / fraction))} left"


def files_line(done: int, total: int, bytes_read: int, rejected: int, elapsed: float) -> str:
    """The conversion's line: files done of total, MB/s read, rejects so far, time left."""
    fraction = done / total if total else 1.0
    rate = bytes_read / 1e6 / elapsed if elapsed > 0 else 0.0
    return (
        f"progress: {done}/{total} files ({fraction:.0%}), {rate:.1f} MB/s, {rejected} rejected, "
        f"{_left(fraction, elapsed)}"
    )


def tasks_line(
    spark_context: Any, job_group: str, elapsed: float, phase: str = "", skip_jobs: frozenset[int] = frozenset()
) -> str | None:
    """Tasks done of total over the stages of `job_group` that Spark knows of (None before the first starts),
    leaving out the jobs in `skip_jobs` (those of earlier phases); with `phase`, the line names it."""
    tracker = spark_context.statusTracker()
    stages = [
        info
        for job in tracker.getJobIdsForGroup(job_group)
        if job not in skip_jobs and (job_info := tracker.getJobInfo(job)) is not None
        for stage in job_info.stageIds
        if (info := tracker.getStageInfo(stage)) is not None
    ]
    total = sum(s.numTasks for s in stages)
    if not total:
        return None
    done = sum(s.numCompletedTasks for s in stages)
    named = f"{phase}: " if phase else ""
    return f"progress: {named}{done}/{total} tasks ({done / total:.0%}), {_left(done / total, elapsed)}"


class Phases:
    """A job's named phases for its progress lines: each line counts the tasks of the current phase's Spark jobs
    (those of `job_group` started since the phase began) and its time left from the phase's own start."""

    def __init__(self, spark_context: Any, job_group: str) -> None:
        self._sc = spark_context
        self._group = job_group
        self._name = ""
        self._skip: frozenset[int] = frozenset()
        self._start = time.perf_counter()

    def begin(self, name: str) -> None:
        self._skip = frozenset(self._sc.statusTracker().getJobIdsForGroup(self._group))
        self._start = time.perf_counter()
        self._name = name

    def line(self, elapsed: float) -> str | None:
        """The current phase's line (`elapsed`, the job's time so far, is not used: the phase keeps its own)."""
        del elapsed
        return tasks_line(self._sc, self._group, time.perf_counter() - self._start, self._name, self._skip)


@contextlib.contextmanager
def job_group(spark_context: Any, name: str, description: str) -> Iterator[str]:
    """Run the block's Spark jobs in a new job group named `<name>-<pid>-<ns>` (yielded), then restore the
    thread's previous group."""
    previous = spark_context.getLocalProperty("spark.jobGroup.id")
    previous_description = spark_context.getLocalProperty("spark.job.description")
    group = f"{name}-{os.getpid()}-{time.monotonic_ns()}"
    spark_context.setJobGroup(group, description)
    try:
        yield group
    finally:
        spark_context.setLocalProperty("spark.jobGroup.id", previous)
        spark_context.setLocalProperty("spark.job.description", previous_description)


@contextlib.contextmanager
def ticking(
    every: float | None, line: Callable[[float], str | None], report: Callable[[str], None] | None = None
) -> Iterator[None]:
    """While the block runs, call ``line(elapsed_seconds)`` every `every` seconds and `report` what it returns
    (default: print to stderr); nothing when `every` is None (``--quiet``)."""
    if every is None:
        yield
        return
    report = report or (lambda text: print(text, file=sys.stderr, flush=True))
    stop = threading.Event()
    start = time.perf_counter()

    def loop() -> None:
        while not stop.wait(every):
            with contextlib.suppress(Exception):  # a progress line must never fail the job
                text = line(time.perf_counter() - start)
                if text:
                    report(text)

    thread = threading.Thread(target=loop, name="progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
