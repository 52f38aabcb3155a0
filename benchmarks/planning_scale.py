"""Planning at scale, without files: a synthetic listing of `--files` paths (`label_0123/sub/img_000123456.jpg`
in `--labels` label folders, sorted, as `list_files` returns it) discovered, planned and grouped into `--tasks`
Spark tasks on the driver, and the task plans written; against the per-file rules (`tests/plan_reference.py`, a
Python object per file, as the plan was before it became columns) on `--baseline-files` paths.

Each measurement runs in a child process of its own: its peak RSS (VmHWM) is the driver's memory for that many
paths, the listing included. The largest task payload is the pickled size of what one Spark task is sent.

python -m benchmarks.planning_scale [--files 10000000] [--baseline-files 1000000] [--labels 1000] [--smoke]
"""

from __future__ import annotations

if not __package__:  # run by path, `python benchmarks/planning_scale.py`: import as `-m` does
    import _repo_root  # noqa: F401

import argparse
import json
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from benchmarks.harness import REPO_ROOT, Table, Target, add_run_arguments, benchmark_run, ratio, write_results
from dataset.listing import Listing

MB = 2**20
PATH_TEMPLATE = b"label_0000/sub/img_000000000.jpg"  # digits at [6:10] (label) and [19:28] (file number)
PEAK_RSS_TARGET_MB = 1536  # at 10,000,000 paths, the listing included (see README: Planning at scale)
PAYLOAD_TARGET_BYTES = 1024  # what one Spark task is sent, whatever the file count
CHILD_TIMEOUT_S = 1800


def _digits(numbers: np.ndarray, width: int) -> np.ndarray:
    """ASCII digits of `numbers`, zero-padded to `width` columns (uint8, one row per number)."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return (numbers[:, None] // powers % 10 + ord("0")).astype(np.uint8)


def synthetic_listing(num_files: int, num_labels: int = 1000) -> Listing:
    """`label_<file % labels>/sub/img_<file>.jpg` for files 0..n-1, sorted, with sizes of 20-200 kB; no object per
    path (built as the bytes of an Arrow column)."""
    if not 1 <= num_labels <= 10_000 or num_files >= 10**9:
        raise ValueError("up to 10,000 labels and 999,999,999 files")
    width = len(PATH_TEMPLATE)
    data = np.empty((num_files, width), dtype=np.uint8)
    sizes = np.empty(num_files, dtype=np.int64)
    row = 0
    for label in range(num_labels):  # rows sorted: by label folder, then by the zero-padded file number
        numbers = np.arange(label, num_files, num_labels, dtype=np.int64)
        block = slice(row, row + len(numbers))
        data[block] = np.frombuffer(PATH_TEMPLATE, dtype=np.uint8)
        data[block, 6:10] = _digits(np.full(1, label), 4)
        data[block, 19:28] = _digits(numbers, 9)
        sizes[block] = 20_000 + numbers * 2_654_435_761 % 180_001
        row += len(numbers)
    assert row == num_files
    offsets = np.arange(0, width * (num_files + 1), width, dtype=np.int64)
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    return Listing(pa.Array.from_buffers(pa.large_string(), num_files, buffers), sizes)


def _peak_rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmHWM:"))


def _columns(listing: Listing, num_tasks: int, workdir: Path) -> dict[str, Any]:
    from conversion.images.discovery import discover
    from conversion.images.options import ImageConvertOptions
    from conversion.images.plan import group_into_tasks, plan_shards
    from conversion.images.task_plans import write_task_plans

    times = {}
    start = time.perf_counter()
    found = discover(listing)
    times["discover_s"] = time.perf_counter() - start
    plans = plan_shards(found.candidates, found.labels, ImageConvertOptions("in", "out"))
    times["plan_s"] = time.perf_counter() - start - times["discover_s"]
    tasks = group_into_tasks(plans, num_tasks)
    times["planning_s"] = time.perf_counter() - start
    with tempfile.TemporaryDirectory(prefix="task-plans-", dir=workdir) as folder:
        written = time.perf_counter()
        refs = write_task_plans(tasks, folder)
        times["write_s"] = time.perf_counter() - written
        files = sorted(Path(folder, "_plan").iterdir())
        plan_files = {"largest_plan_file_mb": max(f.stat().st_size for f in files) / MB}
        plan_files["plan_files_mb"] = sum(f.stat().st_size for f in files) / MB
    payload = max(len(pickle.dumps(ref, pickle.HIGHEST_PROTOCOL)) for ref in refs)
    largest = max(len(plan.files) for plan in plans)
    return {**times, **plan_files, "shards": len(plans), "largest_shard_files": largest, "payload_bytes": payload}


def _per_file(listing: Listing, num_tasks: int) -> dict[str, Any]:
    from conversion.images.options import ImageConvertOptions
    from tests.plan_reference import reference_discover, reference_group, reference_plan

    files = list(listing)  # what list_files returned before: a ListedFile per file
    del listing
    start = time.perf_counter()
    candidates, _, labels = reference_discover(files)
    discovered = time.perf_counter()
    plans = reference_plan(candidates, labels, ImageConvertOptions("in", "out"))
    planned = time.perf_counter()
    tasks = reference_group(plans, num_tasks)
    times = {
        "discover_s": discovered - start,
        "plan_s": planned - discovered,
        "planning_s": time.perf_counter() - start,
    }
    payload = max(len(pickle.dumps(task, pickle.HIGHEST_PROTOCOL)) for task in tasks)  # sent by value, as before
    largest = max(len(plan[3]) for plan in plans)
    return {**times, "shards": len(plans), "largest_shard_files": largest, "payload_bytes": payload}


def child(kind: str, num_files: int, num_labels: int, num_tasks: int, workdir: Path) -> dict[str, Any]:
    """One measurement in this process (meant to be a fresh one): figures, and the peak RSS at its end."""
    import conversion.images.task_plans  # noqa: F401  (every import before the first figure)
    import tests.plan_reference  # noqa: F401

    rss_start = _peak_rss_mb()
    start = time.perf_counter()
    listing = synthetic_listing(num_files, num_labels)
    listed = time.perf_counter() - start
    figures = _columns(listing, num_tasks, workdir) if kind == "columns" else _per_file(listing, num_tasks)
    return {"kind": kind, "files": num_files, "listing_s": listed, "rss_start_mb": rss_start,
            "peak_rss_mb": _peak_rss_mb(), **figures}  # fmt: skip


def measure(kind: str, num_files: int, num_labels: int = 1000, num_tasks: int = 4, workdir: Path | None = None) -> dict:
    """`child` in a new Python process (`kind`: "columns" or "per_file"); its figures."""
    workdir = workdir or Path(tempfile.gettempdir())
    argv = [sys.executable, "-m", "benchmarks.planning_scale", "--child", kind, "--files", str(num_files)]
    argv += ["--labels", str(num_labels), "--tasks", str(num_tasks), "--workdir", str(workdir)]
    result = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
    if result.returncode:
        raise RuntimeError(f"{kind} planning of {num_files} paths failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.splitlines()[-1])


def _row(table: Table, label: str, figures: dict) -> None:
    table.row(
        label,
        f"{figures['planning_s']:>8.2f} s",
        f"peak RSS {figures['peak_rss_mb']:>7,.0f} MB",
        f"largest task payload {figures['payload_bytes']:>12,} B",
        f"(discover {figures['discover_s']:.2f} s, plan {figures['plan_s']:.2f} s; {figures['shards']:,} shards)",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="planning_scale", description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000_000, help="paths planned by the columns")
    parser.add_argument("--baseline-files", type=int, default=1_000_000, help="paths planned both ways")
    parser.add_argument("--labels", type=int, default=1000, help="label folders")
    parser.add_argument("--tasks", type=int, default=4, help="Spark tasks (2 per core on 2 cores)")
    parser.add_argument("--child", choices=("columns", "per_file"), help=argparse.SUPPRESS)
    add_run_arguments(parser, "planning_scale", "where results.json (and the task plans, for a moment) go")
    smoke = {"files": 20_000, "baseline_files": 5_000, "labels": 50}
    with benchmark_run(parser, argv, "planning_scale", smoke, {"files": 1, "baseline_files": 1, "labels": 1}) as args:
        if args.child:
            print(json.dumps(child(args.child, args.files, args.labels, args.tasks, args.workdir)), flush=True)
            return 0
        run = {
            "per_file": measure("per_file", args.baseline_files, args.labels, args.tasks, args.workdir),
            "columns_baseline": measure("columns", args.baseline_files, args.labels, args.tasks, args.workdir),
            "columns": measure("columns", args.files, args.labels, args.tasks, args.workdir),
        }
        old, small, big = run["per_file"], run["columns_baseline"], run["columns"]
        title = f"planning: {args.files:,} synthetic paths in {args.labels:,} label folders, {args.tasks} tasks"
        table = Table(title, label_width=34)
        _row(table, f"per-file rules, {args.baseline_files:,} paths", old)
        _row(table, f"columns, {args.baseline_files:,} paths", small)
        _row(table, f"columns, {args.files:,} paths", big)
        table.figure("ratio time per-file/columns", ratio(old["planning_s"], small["planning_s"]), None, "(same paths)")
        table.figure(
            "ratio RSS per-file/columns", ratio(old["peak_rss_mb"], small["peak_rss_mb"]), None, "(same paths)"
        )
        growth = ratio((big["peak_rss_mb"] - small["peak_rss_mb"]) * MB, big["files"] - small["files"])
        table.figure("bytes per path", growth, None, "(peak RSS growth between the two column runs)")
        table.figure("peak RSS", big["peak_rss_mb"], Target("<=", PEAK_RSS_TARGET_MB), unit="MB")
        table.figure("largest task payload", big["payload_bytes"], Target("<=", PAYLOAD_TARGET_BYTES), unit="B")
        table.line(
            f"task plans written in {big['write_s']:.2f} s: {big['plan_files_mb']:.1f} MB in {args.tasks} files "
            f"(largest {big['largest_plan_file_mb']:.1f} MB); largest shard {big['largest_shard_files']:,} files"
        )
        table.note("peak RSS includes the listing and the interpreter with numpy and pyarrow "
                   f"({big['rss_start_mb']:.0f} MB before the listing)")  # fmt: skip
        table.print()
        targets = {
            "peak_rss_mb": Target("<=", PEAK_RSS_TARGET_MB).as_dict(big["peak_rss_mb"]),
            "payload_bytes": Target("<=", PAYLOAD_TARGET_BYTES).as_dict(big["payload_bytes"]),
        }
        write_results(args, **run, bytes_per_path=growth, targets=targets)
    return 0


if __name__ == "__main__":
    sys.exit(main())
