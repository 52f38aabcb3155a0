"""Benchmark: Horovod-on-Spark training throughput, its scaling, its input pipeline and its start-up.

    python -m benchmarks.train                                # 4 labels x 500 PNGs, 150 steps of 32
    python -m benchmarks.train --per-label 100 --steps 40     # a short run
    python -m benchmarks.train --smoke                        # 4 x 25 PNGs, 5 steps of 8, each part once

One data set is generated under `--workdir` and reused by later runs while complete: the
32x32 shape PNGs of `demo/data.py` (4 labels x `--per-label`) in `images/`, converted by the
Spark job into `dataset/` (4 shards per split). On it, in one run and one SparkSession:

1. training examples/s with 1 and with 2 Horovod processes (`run_training`: same per-process
   batch, the same fixed `max_steps`, a fresh model_dir each, no export; examples/s as the
   training hook counts them, the first step left out) and the scaling efficiency
   examples/s(2) / (2 x examples/s(1));
2. the input pipeline alone: `train_input_fn` of one rank iterated eagerly for the same steps
   and batch size, against the examples/s that one training process consumes (headroom);
3. tf.data over the TFRecord shards (the `eval_input_fn` path: parse, decode, resize,
   normalize) against tf.data over the same images as individual files (`list_files` +
   `read_file` + the same decode/resize/normalize of training/images/preprocess.py), with the
   same batch size, the same fixed tf.data thread count and the same tf.data options
   (`training.input.dataset_options`);
4. the fixed cost of `horovod.spark.run` start-up with a trivial function.

The figures are printed (benchmarks/harness.py) and written to `<workdir>/results.json`.
`--smoke` times each part once (one start-up, one pipeline run, one pass per side).
"""

from __future__ import annotations

if not __package__:  # run by path, `python benchmarks/train.py`: import as `-m` does
    import _repo_root  # noqa: F401

import argparse
import dataclasses
import os
import shutil
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import cloudpickle

from benchmarks.harness import (
    Figures,
    Table,
    Target,
    add_run_arguments,
    benchmark_run,
    import_tensorflow,
    per_second,
    rate_cell,
    ratio,
    seconds_cell,
    start_spark,
    timed,
    write_results,
)
from conversion.images.convert import convert_images
from conversion.images.options import ImageConvertOptions
from dataset.errors import ConversionError, DatasetError
from dataset.manifest import Manifest
from dataset.versions import read_manifest
from jobs.spark_cli import add_spark_arguments

DEFAULT_MASTER = "local[2]"
NUM_SHARDS = 4
SCALING_PROCS = (1, 2)
STARTUP_PROCS = 2
START_TIMEOUT_S = 120
SMOKE = {"per_label": 25, "steps": 5, "batch_size": 8}  # --smoke sizes: seconds, every code path

TARGETS = {"headroom": Target(">=", 1.5), "tfrecord_vs_files": Target(">=", 3.0)}

# Horovod's processes unpickle `trivial_rank`: send it by value, `benchmarks` being no installed package.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


@dataclass(frozen=True)
class Repeats:
    """How often the measurements repeat: the full benchmark's, or a smoke run's (each part once)."""

    startup_runs: int = 2  # horovod.spark.run start-ups timed; the lowest is the fixed cost
    pipeline_repeats: int = 3  # eager runs of train_input_fn; the median rate is reported
    min_passes: int = 3  # TFRecord/files comparison: whole passes timed per side, at least this many ...
    min_timed_s: float = 2.0  # ... and at least this long in all, the two sides alternating


FULL_REPEATS = Repeats()
SMOKE_REPEATS = Repeats(startup_runs=1, pipeline_repeats=1, min_passes=1, min_timed_s=0.0)


@dataclass(frozen=True)
class PassTiming:
    """One timed pass of a tf.data pipeline."""

    records: int
    seconds: float

    @property
    def records_per_s(self) -> float:
        """Records per second of the pass."""
        return self.records / self.seconds


# --------------------------------------------------------------------------- set-up


def ensure_images(root: Path, per_label: int) -> bool:
    """The demo image tree of `per_label` PNGs per label under `root`, reused when complete.

    Returns whether it was (re)generated.
    """
    from demo.data import SHAPES, generate_tree  # imports TensorFlow: after `import_tensorflow`

    counts = [len(list((root / shape).glob("*.png"))) if (root / shape).is_dir() else 0 for shape in SHAPES]
    if counts == [per_label] * len(SHAPES):
        print(f"  reusing {sum(counts):,} images in {root}", flush=True)
        return False
    shutil.rmtree(root, ignore_errors=True)
    with timed() as generation:
        generate_tree(root, per_label)
    print(
        f"  generated {per_label * len(SHAPES):,} images ({len(SHAPES)} labels x {per_label} PNG 32x32) in "
        f"{generation.seconds:.1f} s",
        flush=True,
    )
    return True


def _reusable(dataset: Path, images: Path, expected_files: int) -> Manifest | None:
    """The manifest of `dataset` when it is a finished conversion of `images` with our options."""
    try:
        manifest = read_manifest(str(dataset))
    except DatasetError:
        return None
    if (
        manifest.source_root != str(images)
        or manifest.num_files_seen != expected_files
        or manifest.options.get("num_shards") != NUM_SHARDS
    ):
        return None
    return manifest


def ensure_dataset(spark: Any, images: Path, dataset: Path, expected_files: int, regenerated: bool) -> Manifest:
    """The converted dataset of `images` (NUM_SHARDS per split), converted unless a matching one exists."""
    manifest = None if regenerated else _reusable(dataset, images, expected_files)
    if manifest is not None:
        print(f"  reusing the dataset in {dataset} ({manifest.num_records:,} records)", flush=True)
        return manifest
    options = ImageConvertOptions(str(images), str(dataset), num_shards=NUM_SHARDS, mode="overwrite")
    with timed() as conversion:
        summary = convert_images(spark, options)
    print(f"  converted {sum(summary.records.values()):,} images in {conversion.seconds:.1f} s", flush=True)
    return read_manifest(str(dataset))


# --------------------------------------------------------------------------- 1. training, 1 and 2 processes


def train_config(dataset: Path, model_dir: Path, batch_size: int, steps: int) -> Any:
    """The TrainConfig of one timed training run (defaults otherwise, no export)."""
    from training.config import TrainConfig

    return TrainConfig(
        data=str(dataset), model_dir=str(model_dir), batch_size=batch_size, max_steps=steps, export=False
    )


def run_scaling(spark: Any, dataset: Path, models: Path, batch_size: int, steps: int) -> dict[int, dict[str, Any]]:
    """Train with each process count of SCALING_PROCS in a fresh model_dir; their metrics by process count."""
    from training.run import run_training

    runs = {}
    for num_proc in SCALING_PROCS:
        model_dir = models / f"np{num_proc}"
        shutil.rmtree(model_dir, ignore_errors=True)
        print(f"  training {steps} steps on {num_proc} process(es)...", flush=True)
        result = run_training(spark, train_config(dataset, model_dir, batch_size, steps), num_proc=num_proc)
        metrics = result.metrics
        runs[num_proc] = {
            "num_proc": num_proc,
            "steps_run": metrics["steps_run"],
            "batch_size_per_proc": metrics["batch_size_per_proc"],
            "examples_per_sec_total": metrics["examples_per_sec_total"],
            "examples_per_sec_per_rank": metrics["examples_per_sec_per_rank"],
            "wall_seconds": metrics["wall_seconds"],
            "wall_examples_per_sec": per_second(metrics["steps_run"] * batch_size * num_proc, metrics["wall_seconds"]),
            "eval": metrics["eval"],
            "eval_split": metrics["eval_split"],
            "eval_seconds": metrics["eval_seconds"],  # the slowest rank's; every rank evaluates its part
        }
    return runs


# --------------------------------------------------------------------------- 2. the input pipeline alone


def rank_threads(num_proc: int) -> int:
    """tf.data threads of one rank when `num_proc` ranks share this machine (as training/rank.py sets them)."""
    return max(1, (os.cpu_count() or 1) // num_proc)


def iterate_timed(data: Any) -> dict[str, Any]:
    """Iterate `data` eagerly; the first batch is timed apart and left out of the rate.

    As `ExamplesPerSecondHook` leaves out the first training step, the first batch (pipeline
    start, shuffle buffer fill) is not counted.
    """
    with timed() as first:
        batches = iter(data)
        next(batches)
    records = batches_seen = 0
    with timed() as rest:
        for _, labels in batches:
            records += int(labels.shape[0])
            batches_seen += 1
    return {
        "batches": batches_seen + 1,
        "first_batch_s": first.seconds,
        "timed_records": records,
        "timed_seconds": rest.seconds,
        "records_per_s": per_second(records, rest.seconds),
    }


def time_train_pipeline(dataset: Path, manifest: Manifest, batch_size: int, steps: int, repeats: int) -> dict[str, Any]:
    """`train_input_fn` of rank 0 of 1 (the threads of a lone rank), `steps` batches, `repeats` times.

    Each repeat builds the pipeline anew, as a training run does; the median rate is the figure.
    """
    from training.config import TrainConfig, resolve_params
    from training.input import train_input_fn
    from training.kinds import kind_for, split_input_spec

    config = TrainConfig(data=str(dataset), model_dir="", batch_size=batch_size, max_steps=steps)
    params = resolve_params(kind_for(manifest).default_params, config.params)  # as training/run.py resolves them
    spec = split_input_spec(str(dataset), manifest, config.train_split, params, rank_threads(1))
    input_fn = train_input_fn(spec, batch_size, steps, 0, 1, config.seed, config.shuffle_buffer)
    runs = [iterate_timed(input_fn()) for _ in range(repeats)]
    median = sorted(runs, key=lambda run: run["records_per_s"])[len(runs) // 2]
    return {"threads": spec.threads, **median, "runs": runs}


# --------------------------------------------------------------------------- 3. TFRecord shards vs files


def tfrecord_dataset(dataset: Path, manifest: Manifest, batch_size: int, threads: int) -> Any:
    """`eval_input_fn` over the shards of every split: each record once, parsed, decoded, resized, normalized."""
    from training.images.model import IMAGE_PARAMS as DEFAULT_PARAMS
    from training.input import eval_input_fn
    from training.kinds import split_input_spec

    specs = [
        split_input_spec(str(dataset), manifest, split, DEFAULT_PARAMS, threads) for split in sorted(manifest.splits)
    ]
    spec = dataclasses.replace(specs[0], files=tuple(f for s in specs for f in s.files))
    return eval_input_fn(spec, batch_size)()


def files_dataset(tf: ModuleType, images: Path, batch_size: int, threads: int) -> Any:
    """The same images as individual files: list_files + read_file + training/preprocess.py per image.

    The standard file pipeline: a parallel map over the files (the thread count of the TFRecord side),
    then batch and prefetch, with the library's tf.data options (deterministic, as `eval_input_fn`).
    """
    from training.images.model import IMAGE_PARAMS as DEFAULT_PARAMS
    from training.images.preprocess import decode, normalize, resize
    from training.input import dataset_options

    size, channels = tuple(DEFAULT_PARAMS["image_size"]), int(DEFAULT_PARAMS["channels"])

    def load(path: Any) -> tuple[dict, Any]:
        image = normalize(resize(decode(tf.io.read_file(path), channels), size))
        return {"image": image, "key": path}, tf.strings.split(path, os.sep)[-2]

    files = tf.data.Dataset.list_files(str(images / "*" / "*.png"), shuffle=False)
    batches = files.map(load, num_parallel_calls=threads).batch(batch_size)
    return batches.prefetch(2).with_options(dataset_options(threads, deterministic=True))


def time_pass(data: Any) -> PassTiming:
    """One full pass over `data`, timed from creating its iterator to its end."""
    records = 0
    with timed() as timing:
        for _, labels in data:
            records += int(labels.shape[0])
    return PassTiming(records, timing.seconds)


def time_alternating(pipelines: dict[str, Any], min_passes: int, min_seconds: float) -> dict[str, list[PassTiming]]:
    """A warm-up pass of each pipeline (page cache, tracing), then timed passes of each in turn.

    The pipelines alternate pass by pass, so that a change of load on the (shared) machine weighs on
    all of them alike, until each has run `min_passes` passes and `min_seconds` in all.
    """
    for data in pipelines.values():
        time_pass(data)
    timings: dict[str, list[PassTiming]] = {name: [] for name in pipelines}

    def short(runs: list[PassTiming]) -> bool:
        return len(runs) < min_passes or sum(run.seconds for run in runs) < min_seconds

    while any(short(runs) for runs in timings.values()):
        for name, data in pipelines.items():
            timings[name].append(time_pass(data))
    return timings


def compare_tfrecord_files(
    tf: ModuleType, images: Path, dataset: Path, manifest: Manifest, batch_size: int, repeats: Repeats
) -> dict[str, Any]:
    """Records/s of the TFRecord pipeline and of the file pipeline over the same images.

    Each side's rate is all its timed records over all its timed seconds (whole passes).
    """
    threads = rank_threads(1)
    pipelines = {
        "tfrecord": tfrecord_dataset(dataset, manifest, batch_size, threads),
        "files": files_dataset(tf, images, batch_size, threads),
    }
    sides = time_alternating(pipelines, repeats.min_passes, repeats.min_timed_s)
    result: dict[str, Any] = {"threads": threads, "batch_size": batch_size}
    for name, timings in sides.items():
        rates = [t.records_per_s for t in timings]
        result[name] = {
            "records": timings[0].records,
            "passes": len(timings),
            "seconds": sum(t.seconds for t in timings),
            "records_per_s": per_second(sum(t.records for t in timings), sum(t.seconds for t in timings)),
            "pass_records_per_s": {"min": min(rates), "median": statistics.median(rates), "max": max(rates)},
        }
    result["shards"] = sum(len(split.files) for split in manifest.splits.values())
    result["ratio"] = ratio(result["tfrecord"]["records_per_s"], result["files"]["records_per_s"])
    return result


# --------------------------------------------------------------------------- 4. horovod.spark.run start-up


def trivial_rank() -> dict[str, Any]:
    """Horovod process body of the start-up probe: import Horovod's TensorFlow binding, join, return the rank."""
    start = time.perf_counter()
    import horovod.tensorflow as hvd

    imported = time.perf_counter()
    hvd.init()
    return {"rank": hvd.rank(), "import_s": imported - start, "init_s": time.perf_counter() - imported}


def time_horovod_startup(runs: int) -> list[dict[str, Any]]:
    """Time `horovod.spark.run` of `trivial_rank` on STARTUP_PROCS processes, `runs` times."""
    import horovod.spark

    timings = []
    for _ in range(runs):
        with timed() as start_up:
            ranks = horovod.spark.run(
                trivial_rank, num_proc=STARTUP_PROCS, use_gloo=True, verbose=0, start_timeout=START_TIMEOUT_S
            )
        seconds = start_up.seconds
        in_rank = max(r["import_s"] + r["init_s"] for r in ranks)
        timings.append(
            {
                "seconds": seconds,
                "ranks": sorted(r["rank"] for r in ranks),
                "in_rank_max_s": in_rank,
                "import_max_s": max(r["import_s"] for r in ranks),
                "init_max_s": max(r["init_s"] for r in ranks),
                "outside_fn_s": seconds - in_rank,
            }
        )
    return timings


# --------------------------------------------------------------------------- figures and report


def figures(
    scaling: dict[int, dict[str, Any]],
    pipeline: dict[str, Any],
    formats: dict[str, Any],
    startup: list[dict[str, Any]],
) -> dict[str, Any]:
    """The derived figures (efficiency, headroom, ratio, fixed cost) and the targets."""
    one, two = scaling[1]["examples_per_sec_total"], scaling[2]["examples_per_sec_total"]
    derived = Figures(TARGETS)
    derived.add("scaling_efficiency", ratio(two, 2 * one))
    derived.add("headroom", ratio(pipeline["records_per_s"], one))
    derived.add("tfrecord_vs_files", formats["ratio"])
    derived.add("startup_fixed_cost_s", min(run["seconds"] for run in startup))
    return derived.as_dict()


def report_scaling(scaling: dict[int, dict[str, Any]], derived: dict[str, Any], train_records: int) -> Table:
    """The printed training figures."""
    first = scaling[1]
    table = Table(
        f"1. Training: Horovod processes 1 vs 2 ({first['steps_run']} steps, batch {first['batch_size_per_proc']} "
        f"per process, {train_records:,} training records)",
        label_width=20,
    )
    for num_proc, run in scaling.items():
        per_rank = ", ".join(f"{rate:.0f}" for rate in run["examples_per_sec_per_rank"])
        timed_s = (run["steps_run"] - 1) * run["batch_size_per_proc"] / max(min(run["examples_per_sec_per_rank"]), 1e-9)
        table.row(
            f"{num_proc} process{'es' if num_proc > 1 else ''}",
            rate_cell(run["examples_per_sec_total"], "examples/s", 9),
            f"(per rank {per_rank}, over {timed_s:.1f} s of steps; run wall {run['wall_seconds']:.1f} s = "
            f"{run['wall_examples_per_sec']:.0f} examples/s with start-up and evaluation)",
        )
    table.line(
        f"evaluation of {first['eval_split']}: "
        + ", ".join(
            f"{run['eval_seconds']:.2f} s with {n} process{'es' if n > 1 else ''}" for n, run in scaling.items()
        )
        + " (every rank evaluates its shards; metric sums allreduced)"
    )
    table.figure(
        "scaling efficiency", derived["scaling_efficiency"], None, "(examples/s(2) / (2 x examples/s(1)); no target)"
    )
    table.note(
        f"this machine has {os.cpu_count() or 1} cores, shared by the Spark JVM, both ranks' TensorFlow and their "
        f"tf.data threads ({rank_threads(2)} per rank with 2 processes); 2 processes cannot double the throughput "
        "here, so the efficiency is expected below 1. It measures Horovod's overhead only on machines with cores to "
        "spare."
    )
    return table


def report_pipeline(pipeline: dict[str, Any], scaling: dict[int, dict[str, Any]], derived: dict[str, Any]) -> Table:
    """The printed input pipeline figures."""
    table = Table(
        f"2. Input pipeline alone: train_input_fn, rank 0 of 1, {pipeline['threads']} tf.data threads, iterated "
        "eagerly",
        label_width=20,
    )
    table.row(
        "pipeline",
        rate_cell(pipeline["records_per_s"], "records/s", 9),
        f"(median of {len(pipeline['runs'])} runs of {pipeline['batches']} batches: {_rates(pipeline['runs'])}; "
        f"first batch {pipeline['first_batch_s']:.2f} s, left out like the training hook's first step)",
    )
    table.row("training, 1 process", rate_cell(scaling[1]["examples_per_sec_total"], "examples/s", 9))
    table.figure("headroom", derived["headroom"], TARGETS["headroom"], "(pipeline records/s / training examples/s)")
    return table


def _rates(runs: list[dict[str, Any]]) -> str:
    """`11800, 12090, 12500 records/s`: the rates of the repeats, in order."""
    return ", ".join(f"{run['records_per_s']:.0f}" for run in runs)


def _passes(side: dict[str, Any]) -> str:
    """`7 passes in 2.1 s, 3000-4600 records/s per pass` of one side of the comparison."""
    rates = side["pass_records_per_s"]
    return (
        f"{side['passes']} passes in {side['seconds']:.1f} s, {rates['min']:.0f}-{rates['max']:.0f} records/s "
        "per pass"
    )


def report_formats(formats: dict[str, Any], derived: dict[str, Any]) -> Table:
    """The printed TFRecord/files comparison."""
    rec, files = formats["tfrecord"], formats["files"]
    value = derived["tfrecord_vs_files"]
    target = TARGETS["tfrecord_vs_files"]
    table = Table(
        f"3. tf.data: TFRecord shards vs individual image files (batch {formats['batch_size']}, "
        f"{formats['threads']} threads both, decode+resize+normalize both; whole passes after a warm-up, "
        "alternating)",
        label_width=20,
    )
    table.row(
        "TFRecord shards",
        rate_cell(rec["records_per_s"], "records/s", 9),
        f"({rec['records']:,} records in {formats['shards']} shards; {_passes(rec)})",
    )
    table.row(
        "individual files",
        rate_cell(files["records_per_s"], "records/s", 9),
        f"({files['records']:,} PNG files; {_passes(files)})",
    )
    table.figure("ratio", value, target, "(TFRecord records/s / file records/s)")
    if rec["records"] != files["records"]:
        table.warning(f"{rec['records']} records against {files['records']} files (rejected images?)")
    if not target.met(value):
        table.note(
            "these are tiny PNGs on a local disk with a warm page cache, where opening a file costs "
            "microseconds and decoding dominates both sides (the TFRecord path also parses each batch and decodes "
            "its images one by one in a tf.map_fn, the file path maps each image). TFRecords win most where each "
            "file open is expensive: many small files on remote or distributed storage (HDFS, S3, GCS, NFS), cold "
            "caches, and listing millions of paths; this run does not measure that case."
        )
    return table


def report_startup(startup: list[dict[str, Any]], derived: dict[str, Any]) -> Table:
    """The printed horovod.spark.run start-up figures."""
    table = Table(f"4. horovod.spark.run start-up ({STARTUP_PROCS} processes, Gloo, trivial function)", label_width=20)
    for number, run in enumerate(startup, 1):
        table.row(
            f"run {number}",
            seconds_cell(run["seconds"]),
            f"(in the ranks: import horovod.tensorflow {run['import_max_s']:.2f} s + hvd.init "
            f"{run['init_max_s']:.2f} s; outside the function {run['outside_fn_s']:.2f} s)",
        )
    table.figure("fixed cost", derived["startup_fixed_cost_s"], None, f"(lowest of {len(startup)} runs)", unit="s")
    return table


# --------------------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    """The benchmark's options, plus the jobs' Spark options."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.train",
        description="Time Horovod-on-Spark training (1 vs 2 processes), its input pipeline, TFRecords vs files, "
        "and horovod.spark.run start-up.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--per-label", type=int, default=500, help="generated PNGs per shape label of demo/data.py")
    parser.add_argument("--steps", type=int, default=150, help="max_steps of each training run and pipeline batches")
    parser.add_argument("--batch-size", type=int, default=32, help="examples per process per step")
    add_run_arguments(parser, "train", "images, dataset, models, results.json")
    add_spark_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Prepare the data, run the four measurements, print and save the figures."""
    parser = build_parser()
    with benchmark_run(parser, argv, "train", SMOKE, {"per_label": 1, "steps": 2, "batch_size": 1}) as args:
        return measure(args)


def measure(args: argparse.Namespace) -> int:
    """The benchmark proper, in `args.workdir`."""
    repeats = SMOKE_REPEATS if args.smoke else FULL_REPEATS
    images, dataset = args.workdir / "images", args.workdir / "dataset"

    tf = import_tensorflow("2")
    from dataset.errors import TrainingError
    from demo.data import SHAPES

    print(f"Preparing data in {args.workdir}", flush=True)
    regenerated = ensure_images(images, args.per_label)
    spark, session_start_s = start_spark(args, "benchmark_train", DEFAULT_MASTER)
    spark_version = spark.version
    print(f"  Spark {spark_version} on {args.master}: session started in {session_start_s:.2f} s", flush=True)

    try:
        manifest = ensure_dataset(spark, images, dataset, args.per_label * len(SHAPES), regenerated)
        train_records = manifest.splits["train"].num_records
        print("Timing horovod.spark.run start-up...", flush=True)
        startup = time_horovod_startup(repeats.startup_runs)
        print("Training...", flush=True)
        scaling = run_scaling(spark, dataset, args.workdir / "models", args.batch_size, args.steps)
        print("Timing the input pipelines...\n", flush=True)
        pipeline = time_train_pipeline(dataset, manifest, args.batch_size, args.steps, repeats.pipeline_repeats)
        formats = compare_tfrecord_files(tf, images, dataset, manifest, args.batch_size, repeats)
    except (ConversionError, DatasetError, TrainingError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        spark.stop()

    derived = figures(scaling, pipeline, formats, startup)
    report_scaling(scaling, derived, train_records).print()
    report_pipeline(pipeline, scaling, derived).print()
    report_formats(formats, derived).print()
    report_startup(startup, derived).print()

    summary = {  # **derived after the details: its "tfrecord_vs_files" ratio replaces them, as before
        "versions": {"tensorflow": tf.__version__, "spark": spark_version},
        "master": args.master,
        "spark_session_start_s": session_start_s,
        "data": {
            "images": str(images),
            "dataset": str(dataset),
            "per_label": args.per_label,
            "labels": len(SHAPES),
            "records": manifest.num_records,
            "train_records": train_records,
            "shards_per_split": NUM_SHARDS,
        },
        "steps": args.steps,
        "batch_size": args.batch_size,
        "training": {str(num_proc): run for num_proc, run in scaling.items()},
        "input_pipeline": pipeline,
        "tfrecord_vs_files": formats,
        "horovod_startup": startup,
        **derived,
        "notes": {
            "scaling_efficiency": "no target; on a 2-core machine the JVM, both ranks and tf.data share the cores, "
            "so it is expected below 1",
            "examples_per_sec": "as ExamplesPerSecondHook counts them: the first step left out, start-up and "
            "evaluation outside",
        },
    }
    write_results(args, **summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
