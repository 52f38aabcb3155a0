"""Where the table job's JVM time goes: one whole run of `benchmarks.convert_table`'s job child (a fresh process, its
own Spark start) under Java Flight Recorder, its execution samples counted by what they were doing.

    python -m benchmarks.table_profile --rows 2000000 --cores 2 --workdir /tmp/tables2/bench

Shares of samples, not seconds: they hold under load, when wall times do not. A sample counts in every category its
stack matches (the survey's map side holds its observation and its Parquet reads). The JIT's compile time is printed
from JFR's compiler statistics (wall time of compilations, summed over the compiler threads).
"""

from __future__ import annotations

if not __package__:  # run by path: import as `-m` does
    import _repo_root  # noqa: F401

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

from benchmarks.convert_table import ensure_data, whole_run

JFR = Path(os.environ.get("JAVA_HOME", "/usr/lib/jvm/default-java")) / "bin" / "jfr"

# (category, frames all of which the sample's stack holds, frames none of which it holds)
CATEGORIES = (
    ("survey (scan, hash, split, observation, explode, counts)", ("hashAgg_doAggregateWithKeys",), ()),
    ("  its observation of the statistics", ("hashAgg_doAggregateWithKeys", "AggregatingAccumulator.add"), ()),
    ("  its Parquet reads", ("hashAgg_doAggregateWithKeys", "parquet."), ()),
    ("  its hash-map lookups (vocabularies, counts)", ("getAggregationBufferFromUnsafeRow",), ()),
    ("write: map side (scan, hash, split, quantile sample, shuffle)", ("ShuffleWriter",), ("hashAgg_doAggregate",)),
    ("  its observation of the quantiles", ("AggregatingAccumulator.add",), ("hashAgg_doAggregate",)),
    ("write: shard side (sort, records)", ("FileFormatDataWriter",), ()),
    ("  the sort inside shards", ("UnsafeExternalRowSorter",), ()),
    ("  spark-tfrecord's records", ("TFRecordOutputWriter",), ()),
    ("SHA-256 of the keys (the split rule)", ("DigestUtils",), ()),
)


def count_samples(text: str) -> tuple[int, dict[str, int]]:
    """Execution samples in `jfr print` output, and how many match each category."""
    samples = text.split("jdk.ExecutionSample")[1:]
    counts = {}
    for name, wanted, unwanted in CATEGORIES:
        counts[name] = sum(1 for s in samples if all(w in s for w in wanted) and not any(u in s for u in unwanted))
    return len(samples), counts


def compile_seconds(recording: Path) -> float:
    """The JIT's total compile time in the recording (its last compiler statistics)."""
    text = subprocess.run(
        [str(JFR), "print", "--events", "jdk.CompilerStatistics", str(recording)], capture_output=True, text=True
    ).stdout
    found = re.findall(r"totalTimeSpent = (?:(\d+) m )?([\d.]+) s", text)
    if not found:
        return 0.0
    minutes, seconds = found[-1]
    return int(minutes or 0) * 60 + float(seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--num-shards", type=int, default=0, help="0: the job's default shard sizing")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/tfrecordpipe-bench"))
    args = parser.parse_args(argv)
    base = args.workdir / f"table-{args.rows}"
    ensure_data(base, args.rows)
    recording = base / "job.jfr"
    recording.unlink(missing_ok=True)
    child = argparse.Namespace(
        rows=args.rows, workdir=args.workdir, cores=args.cores, master=None,
        conf=[f"spark.driver.extraJavaOptions=-XX:StartFlightRecording=filename={recording},settings=profile"],
    )  # fmt: skip
    run = whole_run(child, "job", args.num_shards, base / "profiled")
    text = subprocess.run(
        [str(JFR), "print", "--stack-depth", "64", "--events", "jdk.ExecutionSample", str(recording)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    total, counts = count_samples(text)
    phases = "  ".join(f"{phase} {seconds:.2f}" for phase, seconds in run["phases"].items())
    print(f"job: {run['whole_s']:.2f} s whole (start {run['start_s']:.2f}  {phases}); JVM CPU {run['jvm_cpu_s']}")
    print(f"JIT compile time (summed over compiler threads): {compile_seconds(recording):.1f} s")
    print(f"{total} execution samples of Java code:")
    for name, n in counts.items():
        print(f"  {n:6d}  {n / max(total, 1):6.1%}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
