"""Benchmark: training from an object store, streamed (a window of shards on local disk) against copy-first.

    python -m benchmarks.streaming                   # 4 labels x 1,500 PNGs, 16 shards per split, 2 ranks, 150 steps
    python -m benchmarks.streaming --smoke           # tiny sizes, every code path

The shape PNGs of demo/data.py are converted (Spark, local disk) into `--shards` shards per split, uploaded to
S3Proxy 4.0.0 on loopback (tests/s3server.py), and read through the proxy tests/latency_proxy.py, which adds
`--delay-ms` (20 ms) to every request. On the same data, `run_training` with `--num-proc` Horovod ranks:

1. copy-first: each rank copies its share of the shards to local disk, then trains;
2. streaming: each rank fetches its shards while it trains, at most `--window` on local disk.

Figures per path: the time to the first step (from before the rank's shards are fetched to the end of its first
step, the slowest rank; it includes the Estimator's graph and session start, the same for both paths), the input's
start-up (the copy of the share before training, plus the time from the training session being ready to the end of
the first step: the wait for the first batch, and one step), steps/s (the training hook's examples/s of each rank over the batch size, first step left
out, mean of the ranks), each the best of `--repeats` (2) runs of each path, alternating (the machine is shared),
and for streaming the local disk high-water mark each rank's feed measured. The time to
fetch one shard (the largest of the training split, through the proxy, lowest of 3) sets the start-up target. The
shuffle buffer is `--shuffle-buffer` (256) for both: tf.data's shuffle fills it before the first batch, so start-up
waits for that many records whatever the path (ceil(buffer / records per shard) shards).
Targets: streaming's input start-up <= one shard's fetch + 2 s; streaming steps/s >= 0.95 x copy-first's.

`run(spark, workdir, StreamBench(...))` returns the figures (for other benchmarks); results.json gets them too.
"""

from __future__ import annotations

if not __package__:  # run by path, `python benchmarks/streaming.py`: import as `-m` does
    import _repo_root  # noqa: F401

import argparse
import itertools
import os
import shutil
import statistics
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    Table,
    Target,
    add_run_arguments,
    benchmark_run,
    import_tensorflow,
    ratio,
    start_spark,
    timed,
    write_results,
)
from jobs.spark_cli import add_spark_arguments

BUCKET = "bench"
SMOKE = {"per_label": 40, "shards": 4, "steps": 5, "batch_size": 8, "repeats": 1}
STEPS_TARGET = Target(">=", 0.95)


@dataclass(frozen=True)
class StreamBench:
    """The sizes of one run."""

    per_label: int = 1500
    shards: int = 16  # per split
    steps: int = 150
    batch_size: int = 32
    num_proc: int = 2
    window: int = 5
    shuffle_buffer: int = 256
    delay_ms: float = 20.0
    repeats: int = 2  # runs of each path, alternating; the best figures of each count


def prepare(spark: Any, workdir: Path, sizes: StreamBench) -> Path:
    """The converted dataset under `workdir` (reused when it was made with the same sizes)."""
    from conversion.images.convert import convert_images
    from conversion.images.options import ImageConvertOptions
    from dataset.errors import DatasetError
    from dataset.versions import read_manifest
    from demo.data import SHAPES, generate_tree

    images, dataset = workdir / f"images-{sizes.per_label}", workdir / f"dataset-{sizes.per_label}-{sizes.shards}"
    try:
        if read_manifest(str(dataset)).num_records == sizes.per_label * len(SHAPES):
            return dataset
    except DatasetError:
        pass
    generate_tree(images, sizes.per_label)
    convert_images(spark, ImageConvertOptions(str(images), str(dataset), num_shards=sizes.shards, mode="overwrite"))
    return dataset


def _upload(fs: Any, dataset: Path, url: str) -> None:
    files = sorted(p for p in dataset.rglob("*") if p.is_file())
    fs.put([str(p) for p in files], [f"{url}/{p.relative_to(dataset).as_posix()}" for p in files])


def _fetch_one(fs: Any, url: str) -> float:
    """Seconds to fetch the object `url` to local disk, lowest of 3."""
    times = []
    with tempfile.TemporaryDirectory(prefix="fetch-") as folder:
        for _ in range(3):
            with timed() as fetch:
                fs.get_file(url, os.path.join(folder, "shard"))
            times.append(fetch.seconds)
    return min(times)


def _path_figures(result: Any, batch_size: int) -> dict[str, Any]:
    ranks = result.per_rank
    figures = {
        "first_step_s": max(r["first_step_seconds"] for r in ranks),
        # what the input adds to start-up: the share's copy before training (copy-first), and from the session
        # being ready to the end of the first step (waiting for the first batch, and one step)
        "input_start_s": max(r["staging_seconds"] + r["first_step_seconds"] - r["session_seconds"] for r in ranks),
        "steps_per_s": statistics.mean(r["examples_per_sec"] / batch_size for r in ranks),
        "accuracy": result.metrics["eval"]["accuracy"],
    }
    if "stream" in ranks[0]:
        figures["high_water_bytes"] = max(r["stream"]["high_water_bytes"] for r in ranks)
        figures["high_water_files"] = max(r["stream"]["high_water_files"] for r in ranks)
        figures["fetched"] = sum(r["stream"]["fetched"] for r in ranks)
        figures["failed_tries"] = sum(r["stream"]["failed_tries"] for r in ranks)
    return figures


def _best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The best of each figure over the runs of one path (the machine is shared: the others' load only slows)."""
    best = dict(runs[0], runs=runs)
    best["first_step_s"] = min(r["first_step_s"] for r in runs)
    best["input_start_s"] = min(r["input_start_s"] for r in runs)
    best["steps_per_s"] = max(r["steps_per_s"] for r in runs)
    for key in ("high_water_bytes", "high_water_files"):
        if key in best:
            best[key] = max(r[key] for r in runs)
    return best


def run(spark: Any, workdir: Path, sizes: StreamBench = StreamBench()) -> dict[str, Any]:
    """Copy-first and streaming training on the same data behind the proxy; the figures (see the module doc)."""
    from dataset.manifest import shard_urls
    from dataset.object_store import s3_filesystem
    from dataset.versions import read_manifest
    from tests.latency_proxy import LatencyProxy
    from tests.s3server import s3_server
    from training.config import COPY_FIRST, StreamOptions, TrainConfig
    from training.run import run_training

    dataset = prepare(spark, workdir, sizes)
    manifest = read_manifest(str(dataset))
    train = manifest.splits["train"]
    saved = dict(os.environ)
    with (
        s3_server(bucket=BUCKET) as s3,
        LatencyProxy("127.0.0.1", s3.port, delay_ms=sizes.delay_ms, process=True) as proxy,
    ):
        try:
            url = f"s3://{s3.bucket}/ds"
            _upload(s3_filesystem(s3.env()), dataset, url)  # straight to the server
            os.environ.update(s3.env(proxy.endpoint))  # this process and the ranks: through the proxy
            largest = max(zip(train.files, shard_urls(url, manifest, "train")), key=lambda pair: pair[0].bytes)
            fetch_s = _fetch_one(s3_filesystem(), largest[1])
            runs: dict[str, list[dict[str, Any]]] = {"copy_first": [], "streaming": []}
            for _, (name, stream) in itertools.product(
                range(sizes.repeats), (("copy_first", COPY_FIRST), ("streaming", StreamOptions(window=sizes.window)))
            ):
                model_dir = workdir / "models" / name
                shutil.rmtree(model_dir, ignore_errors=True)
                config = TrainConfig(
                    data=url,
                    model_dir=str(model_dir),
                    batch_size=sizes.batch_size,
                    max_steps=sizes.steps,
                    shuffle_buffer=sizes.shuffle_buffer,
                    export=False,
                    stream=stream,
                )
                runs[name].append(_path_figures(run_training(spark, config, sizes.num_proc), sizes.batch_size))
        finally:
            os.environ.clear()
            os.environ.update(saved)
    paths = {name: _best(found) for name, found in runs.items()}
    shares = [sum(f.bytes for f in train.files[rank :: sizes.num_proc]) for rank in range(sizes.num_proc)]
    return {
        "sizes": asdict(sizes),
        "train_records": train.num_records,
        "train_shards": len(train.files),
        "largest_shard_bytes": largest[0].bytes,
        "rank_share_bytes": max(shares),
        "fetch_one_shard_s": fetch_s,
        **paths,
        "steps_ratio": ratio(paths["streaming"]["steps_per_s"], paths["copy_first"]["steps_per_s"]),
    }


def report(figures: dict[str, Any]) -> Table:
    sizes = figures["sizes"]
    table = Table(
        f"streaming vs copy-first: {figures['train_records']:,} records in {figures['train_shards']} shards, "
        f"{sizes['num_proc']} ranks, {sizes['steps']} steps of {sizes['batch_size']}, {sizes['delay_ms']:g} ms a "
        f"request, window {sizes['window']}"
    )
    table.row("fetch one shard", f"{figures['fetch_one_shard_s']:>9.2f} s", f"({figures['largest_shard_bytes']:,} B)")
    for name in ("copy_first", "streaming"):
        path = figures[name]
        table.row(
            name.replace("_", "-"),
            f"first step {path['first_step_s']:6.2f} s",
            f"input start-up {path['input_start_s']:6.2f} s",
            f"{path['steps_per_s']:7.2f} steps/s",
            f"accuracy {path['accuracy']:.3f}",
        )
    stream = figures["streaming"]
    start_target = Target("<=", round(figures["fetch_one_shard_s"] + 2.0, 2))
    table.figure(
        "input start (streaming)", stream["input_start_s"], start_target, "(one shard's fetch + 2 s)", unit="s"
    )
    table.figure("ratio steps/s", figures["steps_ratio"], STEPS_TARGET, "(streaming / copy-first)")
    table.row(
        "disk high-water mark",
        f"{stream['high_water_bytes']:,} B in {stream['high_water_files']} files",
        f"(window {sizes['window']} x largest shard = {sizes['window'] * figures['largest_shard_bytes']:,} B; "
        f"a rank's share {figures['rank_share_bytes']:,} B)",
    )
    table.row("fetches", f"{stream['fetched']} ({stream['failed_tries']} failed tries)")
    return table


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.streaming",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    defaults = StreamBench()
    parser.add_argument("--per-label", type=int, default=defaults.per_label, help="PNGs per label (4 labels)")
    parser.add_argument("--shards", type=int, default=defaults.shards, help="shards per split")
    parser.add_argument("--steps", type=int, default=defaults.steps, help="training steps of each path")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size, help="per rank")
    parser.add_argument("--num-proc", type=int, default=defaults.num_proc, help="Horovod ranks")
    parser.add_argument("--window", type=int, default=defaults.window, help="--stream-window of the streaming path")
    parser.add_argument("--shuffle-buffer", type=int, default=defaults.shuffle_buffer, help="records, both paths")
    parser.add_argument("--delay-ms", type=float, default=defaults.delay_ms, help="added by the proxy to a request")
    parser.add_argument("--repeats", type=int, default=defaults.repeats, help="runs of each path, alternating")
    add_run_arguments(parser, "streaming", "where the data and results.json go")
    add_spark_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    least = {"per_label": 2, "shards": 1, "steps": 2, "batch_size": 1, "num_proc": 1, "window": 5, "repeats": 1}
    with benchmark_run(parser, argv, "streaming", SMOKE, least) as args:
        import_tensorflow()
        spark, _ = start_spark(args, "benchmark_streaming", f"local[{args.num_proc}]")
        try:
            sizes = StreamBench(
                args.per_label, args.shards, args.steps, args.batch_size, args.num_proc, args.window,
                args.shuffle_buffer, args.delay_ms, args.repeats,
            )  # fmt: skip
            figures = run(spark, args.workdir, sizes)
        finally:
            spark.stop()
        report(figures).print()
        write_results(args, **figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
