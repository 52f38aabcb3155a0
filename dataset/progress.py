"""Progress lines a job's driver prints every few seconds while Spark runs its tasks.

    progress: 120/400 files (30%), 2.4 MB/s, 3 rejected, 0:00:12 left
    progress: 3/8 tasks (38%), 0:00:40 left

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


def tasks_line(spark_context: Any, job_group: str, elapsed: float) -> str | None:
    """Tasks done of total over the stages of `job_group` that Spark knows of (None before the first starts)."""
    tracker = spark_context.statusTracker()
    stages = [
        info
        for job in tracker.getJobIdsForGroup(job_group)
        if (job_info := tracker.getJobInfo(job)) is not None
        for stage in job_info.stageIds
        if (info := tracker.getStageInfo(stage)) is not None
    ]
    total = sum(s.numTasks for s in stages)
    if not total:
        return None
    done = sum(s.numCompletedTasks for s in stages)
    return f"progress: {done}/{total} tasks ({done / total:.0%}), {_left(done / total, elapsed)}"


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
