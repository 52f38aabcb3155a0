"""The one harness of the benchmarks: the run, the timing, the ratios, the targets and the printed table.

Every benchmark measures a candidate (the Spark job, the TFRecord pipeline...) against a baseline
measured in the same run and on the same data, and reports figures through this module:

* `run` parses the command line, applies the `--smoke` sizes and yields the arguments with the
  work folder (a temporary one for a smoke run, removed at the end);
* `timed` times a block, `ratio` divides two measured figures (the baseline's and the candidate's);
* `Target` is a figure's goal, `Figures` collects the derived figures with their targets;
* `Table` prints a section: a `== title ==` line, then aligned rows of a label, the value and its
  details (`ratio loop/spark        1.38   target >= 1.5  MISS   (>1: Spark is faster)`);
* `write_results` saves the figures as `<workdir>/results.json` with the machine they ran on.

A smoke run uses tiny sizes so that a broken benchmark fails CI in seconds: its figures mean
nothing, and its targets are printed but never fail it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator

from jobs.spark_cli import spark_session

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH_OUTPUT = REPO_ROOT / "bench_output"
MB = 1e6
SEP = "   "  # between the cells of a row
SMOKE_BANNER = (
    "SMOKE RUN: tiny sizes in a temporary folder; the figures mean nothing and the targets are informative only."
)


# --------------------------------------------------------------------------- targets and figures


@dataclass(frozen=True)
class Target:
    """A figure's goal: `value <op> limit`, op being ">=" or "<="."""

    op: str
    limit: float

    def met(self, value: float) -> bool:
        """Whether `value` reaches the target."""
        return value >= self.limit if self.op == ">=" else value <= self.limit

    def text(self, value: float) -> str:
        """`target >= 0.8  PASS` (or MISS)."""
        return f"target {self.op} {self.limit:g}  {'PASS' if self.met(value) else 'MISS'}"

    def as_dict(self, value: float) -> dict[str, Any]:
        """The target, the value and whether it is met, for results.json."""
        return {"op": self.op, "limit": self.limit, "value": value, "pass": self.met(value)}


def ratio(numerator: float, denominator: float) -> float:
    """`numerator / denominator` of two measured figures; inf (or nan for 0/0) instead of a ZeroDivisionError.

    For times the baseline is the numerator (baseline seconds / candidate seconds), for rates the
    candidate is (candidate records/s / baseline records/s): above 1, the candidate is faster.
    """
    if denominator:
        return numerator / denominator
    return math.nan if not numerator else math.copysign(math.inf, numerator)


def per_second(count: float, seconds: float) -> float:
    """`count` per second over `seconds`."""
    return ratio(count, seconds)


@dataclass
class Figures:
    """The derived figures of a run, in the order added, with the targets some of them have."""

    targets: dict[str, Target] = field(default_factory=dict)
    values: dict[str, float] = field(default_factory=dict)

    def add(self, name: str, value: float) -> float:
        """Record figure `name` and return its value."""
        self.values[name] = value
        return value

    def target(self, name: str) -> Target | None:
        """The target of figure `name`, if it has one."""
        return self.targets.get(name)

    def as_dict(self) -> dict[str, Any]:
        """The figures and, under "targets", each target with its value and whether it is met (results.json)."""
        checks = {name: target.as_dict(self.values[name]) for name, target in self.targets.items()}
        return {**self.values, "targets": checks}


# --------------------------------------------------------------------------- timing


@dataclass
class Timing:
    """The seconds a `timed` block took (set when the block ends)."""

    seconds: float = 0.0


@contextmanager
def timed() -> Iterator[Timing]:
    """Time the block: `with timed() as timing: ...` then `timing.seconds` (wall clock, perf_counter)."""
    timing = Timing()
    start = time.perf_counter()
    try:
        yield timing
    finally:
        timing.seconds = time.perf_counter() - start


# --------------------------------------------------------------------------- the printed table


def seconds_cell(value: float) -> str:
    """`     4.21 s`: a duration, its decimal point aligned with `number_cell`."""
    return f"{value:>9.2f} s"


def number_cell(value: float) -> str:
    """`       0.67`: a ratio or any other plain figure."""
    return f"{value:>11.2f}"


def rate_cell(value: float, unit: str, width: int = 8, digits: int = 0) -> str:
    """`   11864 images/s`: a rate in `unit` (or `7.1 MB/s` with `digits`)."""
    return f"{value:>{width}.{digits}f} {unit}"


class Table:
    """One printed section: `== title ==`, then rows of a label (padded to `label_width`) and cells."""

    def __init__(self, title: str, label_width: int = 24) -> None:
        self.label_width = label_width
        self.lines = [f"== {title} =="]

    def row(self, label: str, *cells: str) -> Table:
        """`  <label padded><cell>   <cell>...`; empty cells are left out."""
        self.lines.append(f"  {label:<{self.label_width}}" + SEP.join(cell for cell in cells if cell))
        return self

    def figure(self, label: str, value: float, target: Target | None = None, *details: str, unit: str = "") -> Table:
        """A figure (a ratio, or in `unit` such as "s"), then its target and whether it is met, then details."""
        cell = f"{value:>{10 - len(unit)}.2f} {unit}" if unit else number_cell(value)
        return self.row(label, cell, target.text(value) if target else "", *details)

    def line(self, text: str, indent: int = 2) -> Table:
        """A free line under the rows (a note, a breakdown)."""
        self.lines.append(" " * indent + text)
        return self

    def note(self, text: str) -> Table:
        """`  note: <text>`."""
        return self.line(f"note: {text}")

    def warning(self, text: str) -> Table:
        """`  WARNING: <text>`: something that makes the figures doubtful."""
        return self.line(f"WARNING: {text}")

    def __str__(self) -> str:
        return "\n".join(self.lines)

    def print(self) -> None:
        """Print the table and a blank line."""
        print(f"{self}\n", flush=True)


# --------------------------------------------------------------------------- the run


def add_run_arguments(parser: argparse.ArgumentParser, name: str, workdir_help: str) -> None:
    """`--workdir` (default bench_output/<name>) and `--smoke`."""
    parser.add_argument(
        "--workdir",
        type=Path,
        default=BENCH_OUTPUT / name,
        help=f"{workdir_help}; with --smoke and no --workdir, a temporary folder removed at the end",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny sizes that run in seconds (for CI): every code path, meaningless figures, targets informative",
    )


def require_at_least(parser: argparse.ArgumentParser, args: argparse.Namespace, least: dict[str, int]) -> None:
    """Stop with a usage error when an option is below its least value (`least`: dest → value)."""
    for name, value in least.items():
        if getattr(args, name) < value:
            parser.error(f"--{name.replace('_', '-')} must be at least {value}")


@contextmanager
def benchmark_run(
    parser: argparse.ArgumentParser,
    argv: list[str] | None,
    name: str,
    smoke: dict[str, Any],
    least: dict[str, int],
) -> Iterator[argparse.Namespace]:
    """The parsed arguments of one benchmark run, with `args.workdir` resolved.

    With `--smoke`, each option of `smoke` (dest → value) left at its default takes the smoke
    value, and the work folder is a temporary one (unless `--workdir` is given), removed when the
    block ends; otherwise the work folder is created if need be. `parser` has the arguments of
    `add_run_arguments`. An exception in the block propagates: the benchmark exits non-zero.
    """
    args = parser.parse_args(argv)
    if args.smoke:
        for dest, value in smoke.items():
            if getattr(args, dest) == parser.get_default(dest):
                setattr(args, dest, value)
    require_at_least(parser, args, least)
    if args.smoke:
        print(SMOKE_BANNER, flush=True)
    if args.smoke and args.workdir == parser.get_default("workdir"):
        with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as folder:
            args.workdir = Path(folder).resolve()
            yield args
    else:
        args.workdir = args.workdir.resolve()
        args.workdir.mkdir(parents=True, exist_ok=True)  # results.json and the data go there, --data or not
        yield args


def import_tensorflow(cpp_log_level: str = "3") -> ModuleType:
    """TensorFlow, imported quietly (outside every timer; child processes inherit the log level)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", cpp_log_level)
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.ERROR)
    return tf


def start_spark(
    args: argparse.Namespace, app_name: str, default_master: str, tfrecord: bool = False
) -> tuple[Any, float]:
    """The SparkSession configured like the jobs (`--master`, else `default_master`), and its start-up time.

    With `tfrecord`, the session loads the spark-tfrecord data source as the jobs do (`jobs.tfrecord_jar`).

    A smoke run keeps Spark's scratch space and warehouse in its temporary work folder.
    """
    args.master = args.master or default_master
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if args.smoke:
        scratch = args.workdir / "spark"
        args.conf = [f"spark.local.dir={scratch}", f"spark.sql.warehouse.dir={scratch / 'warehouse'}", *args.conf]
    with timed() as timing:
        spark = spark_session(args, app_name, tfrecord=tfrecord)
        spark.sparkContext.setLogLevel("ERROR")
    return spark, timing.seconds


_THREAD_KINDS = (("Executor task", "tasks"), ("C2 Compiler", "JIT compilers"), ("C1 Compiler", "JIT compilers"))


def jvm_thread_cpu(spark: Any) -> dict[str, float]:
    """CPU seconds the local Spark JVM's live threads have used, by kind: tasks, JIT compilers, GC, other.

    Read from Linux's /proc for a JVM this process started (local masters); {} where that cannot be read.
    Threads that have ended are not counted.
    """
    proc = getattr(getattr(spark.sparkContext, "_gateway", None), "proc", None)
    folder = Path(f"/proc/{proc.pid}/task") if proc is not None else None
    if folder is None or not folder.is_dir():
        return {}
    ticks = os.sysconf("SC_CLK_TCK")
    used: dict[str, float] = {}
    for thread in folder.iterdir():
        try:
            stat = (thread / "stat").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        kind = next((k for prefix, k in _THREAD_KINDS if name.startswith(prefix)), "GC" if "GC" in name else "other")
        used[kind] = used.get(kind, 0.0) + (int(fields[11]) + int(fields[12])) / ticks
    return used


def _proc_cpu(pid: int, children: bool) -> float:
    """CPU seconds of process `pid` from /proc (with its reaped children's when `children`); 0 if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()  # fields from the state on: utime is the 12th, stime, cutime, cstime
    used = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if children else 0)
    return used / os.sysconf("SC_CLK_TCK")


def _descendants(root: int) -> list[int]:
    """The live processes under `root` (its children, theirs, ...), from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:  # ended meanwhile
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        found += frontier
    return found


def spark_cpu(spark: Any) -> dict[str, float]:
    """CPU seconds used so far by this driver process, the local Spark JVM and the Python processes it started
    (the worker daemon and the Python workers, counting workers that ended and were reaped): take the difference
    of two readings. Linux /proc; the JVM and workers are {} where the JVM is not this process's child."""
    used = {"driver": time.process_time()}
    proc = getattr(getattr(spark.sparkContext, "_gateway", None), "proc", None)
    if proc is not None and Path(f"/proc/{proc.pid}").is_dir():
        used["jvm"] = _proc_cpu(proc.pid, children=False)
        used["python workers"] = sum(_proc_cpu(pid, children=True) for pid in _descendants(proc.pid))
    return used


def write_results(args: argparse.Namespace, **figures: Any) -> Path:
    """`<workdir>/results.json`: when, on which machine, then `figures`; prints and returns its path."""
    summary = {
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        **({"smoke": True} if args.smoke else {}),
        **figures,
    }
    path = args.workdir / "results.json"
    path.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"Figures written to {path}" + (" (temporary)" if args.smoke else ""), flush=True)
    return path
