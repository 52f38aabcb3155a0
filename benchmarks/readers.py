"""Benchmark: one dataset, every reader (issue 19). Records/s of the same shards through tf.data, TFDS, the `tfrecord`
package (PyTorch side) with 1 and 2 workers, and random access by index; locally and on S3 behind a 20 ms proxy.

    python -m benchmarks.readers                 # the digits (1,797 PNG 32x32) and 5,000 photos (500x375 JPEG)
    python -m benchmarks.readers --photos 1000   # fewer photos
    python -m benchmarks.readers --smoke         # 24 photos, a few indexes: every code path in about a minute

Both datasets are converted once under `--workdir` by the project's Spark job (one split, `train`; reused while
complete), with their `<shard>.idx` indexes (and the TFDS metadata, once conversion writes it). Every reader yields
the same thing per record, the parsed `image/encoded` bytes, `image/class/label` and `image/filename` (the features
TFDS describes), no image decoding:

* tf.data: `TFRecordDataset(shards).map(parse_single_example, AUTOTUNE).prefetch(AUTOTUNE)`, iterated eagerly;
  the baseline of every ratio.
* TFDS: `tfds.builder_from_directory(DATASET).as_dataset(split="train", decoders=SkipDecoding for images,
  read_config=ReadConfig(try_autocache=False))` (skipped with one line when tensorflow-datasets or the dataset's
  `dataset_info.json` is missing). Target: >= 0.95x tf.data. Row "TFDS, default ReadConfig": with TFDS's autocache
  (a dataset under 250 MiB is cached in memory while a new `as_dataset` is iterated, a cost each pass here).
* the `tfrecord` package: `dataset.torch_reader.worker_examples` in 1 and in 2 child processes (DataLoader workers
  do this; the package and TensorFlow cannot share a process), each worker its share of every shard through the
  indexes; records/s = all records / (last worker's end - first worker's start).
* random access: `dataset.random_access.read_records` of `--random` (1,000) seeded random indexes at once (each
  shard's index read once, then one ranged read a record, concurrent), and `read_record` one at a time for
  `--single` of them (each call reads the manifest too). Cold: a fresh index cache each time.

Each local reader is timed over full passes of the split in `--rounds` rounds, the sides alternating, after an
untimed warm-up pass (the files in the page cache); the best round counts. On S3 (S3Proxy 4.0.0 on loopback, the
`tests/latency_proxy.py` proxy adding `--delay-ms` to every request), tf.data, TFDS and the `tfrecord` package read
no `s3://` here (TF 2.15 has no S3 file system without tensorflow-io; the package opens local files): the row
`copy-first` is what training does today, `stage_to_local` of the split's shards then tf.data, timed together.
Streaming training's figures (time to first step, steps/s against copy-first, the local disk high-water mark) are
`python -m benchmarks.streaming`: it needs Spark and Horovod ranks, this one neither.
"""

from __future__ import annotations

if not __package__:  # run by path, `python benchmarks/readers.py`: import as `-m` does
    import _repo_root  # noqa: F401

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    REPO_ROOT,
    Figures,
    Table,
    Target,
    add_run_arguments,
    benchmark_run,
    import_tensorflow,
    per_second,
    rate_cell,
    ratio,
    start_spark,
    timed,
    write_results,
)
from benchmarks.input_pipeline import cpu_seconds
from dataset.errors import PipelineError
from dataset.features import IMAGE_ENCODED, IMAGE_FILENAME, IMAGE_LABEL_ID
from dataset.manifest import Manifest, shard_urls
from dataset.random_access import IndexCache, SplitReader, read_records
from dataset.tfds_metadata import write_current_metadata
from dataset.versions import read_manifest
from jobs.spark_cli import add_spark_arguments

SPLIT = "train"
KEYS = (IMAGE_ENCODED, IMAGE_LABEL_ID, IMAGE_FILENAME)  # what TFDS's features.json describes for images
TFDS_TARGET = Target(">=", 0.95)
DIGITS_SHARDS, PHOTO_SHARDS = 4, 8
SMOKE = {"photos": 24, "random": 40, "single": 5, "rounds": 1, "min_records": 1}
WORKER_COMMAND = "_worker"  # `python -m benchmarks.readers _worker DATA SPLIT W N`: one tfrecord-package worker


@dataclass(frozen=True)
class Data:
    """One converted dataset the readers share."""

    name: str
    path: Path
    manifest: Manifest

    @property
    def records(self) -> int:
        return self.manifest.split(SPLIT).num_records

    @property
    def shards(self) -> int:
        return len(self.manifest.split(SPLIT).files)

    @property
    def megabytes(self) -> float:
        return sum(f.bytes for f in self.manifest.split(SPLIT).files) / 1e6

    def title(self) -> str:
        return f"{self.name}: {self.records:,} records in {self.shards} shards ({self.megabytes:.1f} MB), split {SPLIT}"


@dataclass
class Result:
    """A reader's best round: records and seconds (or why it was skipped)."""

    records: int = 0
    seconds: float = 0.0
    skipped: str = ""
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def per_s(self) -> float:
        return per_second(self.records, self.seconds)

    def best(self, other: Result) -> Result:
        return other if not self.records or other.per_s > self.per_s else self


# --------------------------------------------------------------------------- the data


def ensure_datasets(args: argparse.Namespace) -> list[Data]:
    """The digits and the photos, each converted under the work folder unless already complete there."""
    from benchmarks.input_pipeline import ensure_photos
    from demo.data import write_digits

    digits_in, photos_in = args.workdir / "digits", args.workdir / "photos"
    counts = {"digits": write_digits(digits_in), "photos": args.photos}
    ensure_photos(photos_in, args.photos)
    wanted = {"digits": (digits_in, DIGITS_SHARDS), "photos": (photos_in, PHOTO_SHARDS)}
    todo = [name for name in wanted if not _complete(args.workdir / f"{name}-dataset", wanted[name][0], counts[name])]
    if todo:
        from conversion.images.convert import convert_images
        from conversion.images.options import ImageConvertOptions

        spark, _ = start_spark(args, "benchmark_readers", "local[2]")
        try:
            for name in todo:
                source, shards = wanted[name]
                options = ImageConvertOptions(
                    str(source), str(args.workdir / f"{name}-dataset"), splits=((SPLIT, 1.0),), num_shards=shards,
                    mode="overwrite",
                )  # fmt: skip
                with timed() as conversion:
                    convert_images(spark, options)
                print(f"  converted the {name} with the Spark job in {conversion.seconds:.1f} s", flush=True)
        finally:
            spark.stop()  # its JVM would compete for the cores being measured
    for name in wanted:
        dataset = args.workdir / f"{name}-dataset"
        if not (dataset / "dataset_info.json").is_file():  # converted before conversion wrote TFDS metadata
            _, refusal = write_current_metadata(str(dataset))
            print(f"  wrote TFDS metadata for the {name}" + (f": {refusal}" if refusal else ""), flush=True)
    return [Data(name, args.workdir / f"{name}-dataset", read_manifest(str(args.workdir / f"{name}-dataset")))
            for name in wanted]  # fmt: skip


def _complete(dataset: Path, source: Path, count: int) -> bool:
    try:
        manifest = read_manifest(str(dataset))
    except PipelineError:
        return False
    indexed = all(f.index for f in manifest.split(SPLIT).files)
    return indexed and manifest.num_files_seen == count and manifest.source_root == str(source)


# --------------------------------------------------------------------------- the readers


def tf_pass(tf: Any, data: Data, files: list[str] | None = None, per_file: bool = False, epochs: int = 1) -> Result:
    """One timed pass of tf.data over the split's shards (or over `files`) `epochs` times, parsing `KEYS`.
    `per_file`: the shards read as TFDS reads them (one TFRecordDataset per file in an interleave of cycle 1 with
    parallel calls, its `disableShuffling` read), so the cost of that shape is measured apart from TFDS's steps."""
    spec = data.manifest.tf_feature_spec(list(KEYS))
    files = files or shard_urls(str(data.path), data.manifest, SPLIT, non_empty=True)
    records = (
        tf.data.Dataset.from_tensor_slices(files).interleave(
            tf.data.TFRecordDataset, cycle_length=1, num_parallel_calls=tf.data.AUTOTUNE
        )
        if per_file
        else tf.data.TFRecordDataset(files)
    )
    dataset = (
        records.map(lambda r: tf.io.parse_single_example(r, spec), num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
        .repeat(epochs)
    )
    return _iterate(dataset)


def _iterate(dataset: Any) -> Result:
    """Iterate `dataset` eagerly, as a training loop does: its records, seconds and this process's CPU seconds (every
    thread's: tf.data's are this process's too)."""
    count, cpu = 0, cpu_seconds()
    with timed() as timing:
        for _ in dataset:
            count += 1
    return Result(count, timing.seconds, extra={"cpu_s": cpu_seconds() - cpu})


def tfds_reader(tf: Any, data: Data, autocache: bool = False, epochs: int = 1) -> Callable[[], Result] | str:
    """A timed pass of TFDS's `as_dataset` over the split `epochs` times, or the line that says why TFDS is skipped.

    TFDS caches a dataset under 250 MiB in memory while a `as_dataset` is first iterated (`try_autocache`, on by
    default): a pass over a new `as_dataset` then fills a cache it never reads. Without `autocache` TFDS reads the
    shards each pass, as tf.data does (the row the target applies to); with it, TFDS's default.
    """
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        return "tensorflow-datasets is not installed (pinned in the train extra: make setup)"
    if not (data.path / "dataset_info.json").is_file():
        return f"{data.path}/dataset_info.json is missing (python jobs/versions.py --data DATASET --tfds writes it)"
    builder = tfds.builder_from_directory(str(data.path))
    if builder.info.splits[SPLIT].num_examples != data.records:
        raise RuntimeError(
            f"TFDS counts {builder.info.splits[SPLIT].num_examples} records, the manifest {data.records}"
        )
    images = {key: tfds.decode.SkipDecoding() for key, f in builder.info.features.items()
              if isinstance(f, tfds.features.Image)}  # fmt: skip
    config = tfds.ReadConfig(try_autocache=autocache)

    def one_pass() -> Result:
        # built before the timer, as tf_pass builds its dataset: both time the reading, not the pipeline's set-up
        dataset = builder.as_dataset(split=SPLIT, decoders=images, read_config=config).repeat(epochs)
        return _iterate(dataset)

    return one_pass


def tfrecord_workers(data: Data, workers: int) -> Result:
    """`workers` child processes, each reading its share with the `tfrecord` package; all records / their span.

    Each child imports what it needs, says it is ready, and starts when every child is: the span covers reading
    only, not Python's start-up.
    """
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "benchmarks.readers", WORKER_COMMAND, str(data.path), SPLIT, str(w), str(workers)],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for w in range(workers)
    ]
    for child in children:
        if child.stdout.readline().strip() != "ready":
            child.kill()
            raise RuntimeError(f"a tfrecord worker did not start: {child.stderr.read()[-2000:]}")
    for child in children:
        child.stdin.write("go\n")
        child.stdin.flush()
    reports = []
    for child in children:
        out, err = child.communicate(timeout=1800)
        if child.returncode:
            raise RuntimeError(f"tfrecord worker exited {child.returncode}: {err[-2000:]}")
        reports.append(json.loads(out.strip().splitlines()[-1]))
    records = sum(r["records"] for r in reports)
    if records != data.records:
        raise RuntimeError(f"{workers} tfrecord workers read {records} records, the split has {data.records}")
    span = max(r["end"] for r in reports) - min(r["start"] for r in reports)
    return Result(records, span, extra={"workers": reports})


def run_worker(argv: list[str]) -> int:
    """A child: read worker W of N's share of a split with the `tfrecord` package; print its count and times."""
    data, split, worker, workers = argv[0], argv[1], int(argv[2]), int(argv[3])
    import tfrecord.reader  # noqa: F401 - imported before the start signal

    from dataset.torch_reader import worker_examples

    print("ready", flush=True)
    sys.stdin.readline()
    count, start = 0, time.time()  # wall clock: compared across processes
    for _ in worker_examples(data, split, worker, workers, keys=KEYS):
        count += 1
    end = time.time()
    if "tensorflow" in sys.modules:
        raise RuntimeError("a tfrecord worker imported TensorFlow")
    print(json.dumps({"worker": worker, "records": count, "start": start, "end": end}), flush=True)
    return 0


def random_indexes(data: Data, count: int, seed: int) -> list[int]:
    return random.Random(seed).sample(range(data.records), min(count, data.records))


def random_access(url: str, data: Data, indexes: list[int]) -> Result:
    """`read_records` of `indexes` at once, with a cold index cache; with the CPU seconds this process used."""
    cpu = cpu_seconds()
    with timed() as timing:
        got = read_records(url, SPLIT, indexes, cache=IndexCache())
    if len(got) != len(indexes):
        raise RuntimeError(f"read_records gave {len(got)} records for {len(indexes)} indexes")
    return Result(len(got), timing.seconds, extra={"cpu_s": cpu_seconds() - cpu})


def one_at_a_time(url: str, indexes: list[int]) -> Result:
    """`read_record`'s work for each of `indexes` in turn (manifest, then one ranged read), a cold index cache."""
    cache = IndexCache()
    with timed() as timing:
        for index in indexes:
            read_records(url, SPLIT, [index], cache=cache)
    return Result(len(indexes), timing.seconds)


def split_reader(url: str, indexes: list[int]) -> Result:
    """`SplitReader(url, split)[k]` for each of `indexes` in turn (the manifest read once), a cold index cache."""
    with timed() as timing:
        reader = SplitReader(url, SPLIT, cache=IndexCache())
        for index in indexes:
            reader[index]
    return Result(len(indexes), timing.seconds)


# --------------------------------------------------------------------------- local disk


PER_FILE = "tf.data, per-file interleave"  # the shape TFDS reads a split in (see tf_pass)
STREAMED = ("tf.data", "TFDS", "TFDS, default ReadConfig")  # the rows timed over `epochs` epochs, CPU counted


def local_section(tf: Any, args: argparse.Namespace, data: Data) -> tuple[Table, dict[str, Any]]:
    url = str(data.path)
    epochs = max(1, -(-args.min_records // data.records))  # a timed pass of the streaming readers: >= min_records
    tfds_pass = tfds_reader(tf, data, epochs=epochs)
    sides: dict[str, Callable[[], Result]] = {"tf.data": lambda: tf_pass(tf, data, epochs=epochs)}
    if callable(tfds_pass):
        sides["TFDS"] = tfds_pass
        sides["TFDS, default ReadConfig"] = tfds_reader(tf, data, autocache=True, epochs=epochs)
        sides[PER_FILE] = lambda: tf_pass(tf, data, per_file=True, epochs=epochs)
    sides["tfrecord, 1 worker"] = lambda: tfrecord_workers(data, 1)
    sides["tfrecord, 2 workers"] = lambda: tfrecord_workers(data, 2)
    indexes = random_indexes(data, args.random, args.seed)
    sides[f"read_records, {len(indexes):,} at once"] = lambda: random_access(url, data, indexes)
    sides[f"SplitReader[k] x {len(indexes):,}, in turn"] = lambda: split_reader(url, indexes)
    single = indexes[: args.single]
    sides[f"read_record x {len(single):,}, in turn"] = lambda: one_at_a_time(url, single)
    tf_pass(tf, data)  # warm-up: the shards in the page cache, tf.data's functions traced
    if callable(tfds_pass):
        tfds_pass()
    best = {name: Result() for name in sides}
    paired: list[float] = []  # TFDS / tf.data within each round: the two measured a few seconds apart
    least_cpu: dict[str, float] = {}  # the least CPU seconds a record of each streamed reader over the rounds
    for _ in range(args.rounds):
        this_round = {name: side() for name, side in sides.items()}
        for name, result in this_round.items():
            best[name] = best[name].best(result)
            if "cpu_s" in result.extra and name in (*STREAMED, PER_FILE):
                per_record = result.extra["cpu_s"] / max(result.records, 1)
                least_cpu[name] = min(least_cpu.get(name, per_record), per_record)
        if callable(tfds_pass):
            paired.append(ratio(this_round["TFDS"].per_s, this_round["tf.data"].per_s))
    base = best["tf.data"].per_s
    table = Table(f"local disk, {data.title()}, best of {args.rounds} round(s); tf.data and TFDS rows "
                  f"{epochs} epoch(s) a timed pass", label_width=34)  # fmt: skip
    figures = Figures(targets={"ratio_tfds": TFDS_TARGET} if callable(tfds_pass) else {})
    results_floor = None
    for name, result in best.items():
        ratio_text = "" if name == "tf.data" else f"ratio {ratio(result.per_s, base):.2f} vs tf.data"
        table.row(name, rate_cell(result.per_s, "records/s"), ratio_text)
    if not callable(tfds_pass):
        table.line(f"TFDS: skipped, {tfds_pass}")
    else:
        table.figure("ratio TFDS/tf.data", figures.add("ratio_tfds", ratio(best["TFDS"].per_s, base)), TFDS_TARGET,
                     "(records/s, same shards; TFDS's autocache off)")  # fmt: skip
        floor = ratio(best["TFDS"].per_s, best[PER_FILE].per_s)
        table.line(f"ratio TFDS/{PER_FILE}: {floor:.2f}   (TFDS against tf.data read in TFDS's own file shape)")
        table.line("ratio TFDS/tf.data round by round: " + ", ".join(f"{r:.2f}" for r in paired)
                   + f"   (median {statistics.median(paired):.2f})")  # fmt: skip
        table.line("CPU a record (least over the rounds, all threads): "
                   + ", ".join(f"{name} {1e6 * cpu:.1f} µs" for name, cpu in least_cpu.items())
                   + f"; ratio tf.data/TFDS {ratio(least_cpu['tf.data'], least_cpu['TFDS']):.2f}"
                   "   (the same work costs the same CPU: other load moves wall time, not this)")  # fmt: skip
        results_floor = floor
    results = {name: {"records": r.records, "seconds": r.seconds, "records_per_s": r.per_s, "ratio": ratio(r.per_s, base)}
               for name, r in best.items()}  # fmt: skip
    return table, {"readers": results, "tfds_skipped": "" if callable(tfds_pass) else tfds_pass, "epochs": epochs,
                   "tfds_paired_ratios": paired, "cpu_per_record_s": least_cpu,
                   "tfds_vs_per_file": results_floor if callable(tfds_pass) else None,
                   "figures": figures.as_dict()}  # fmt: skip


# --------------------------------------------------------------------------- S3 behind the proxy


@dataclass
class S3Run:
    """The server, the proxy in front of it, and the datasets uploaded there (straight to the server)."""

    args: argparse.Namespace
    s3: Any  # tests.s3server.S3Endpoint
    proxy: Any  # tests.latency_proxy.LatencyProxy
    urls: dict[str, str] = field(default_factory=dict)  # dataset name → s3:// URL


def copy_first(tf: Any, run: S3Run, data: Data) -> tuple[Result, float]:
    """What training does today: stage the split's shards to local disk, then tf.data; and the copy's seconds."""
    from dataset.object_store import stage_to_local

    url = run.urls[data.name]
    urls = shard_urls(url, read_manifest(url), SPLIT, non_empty=True)
    with tempfile.TemporaryDirectory(prefix="staged-") as folder:
        with timed() as copy:
            local = stage_to_local(urls, folder, root=url)
        read = tf_pass(tf, data, local)
    return Result(read.records, copy.seconds + read.seconds), copy.seconds


def s3_section(tf: Any, run: S3Run, data: Data, local_tf: float) -> tuple[Table, dict[str, Any]]:
    from benchmarks.object_store import measured, phase_dict

    args, url = run.args, run.urls[data.name]
    indexes = random_indexes(data, args.random, args.seed)
    staged, copy_s = copy_first(tf, run, data)
    with measured(run.proxy) as phase:  # where the CPU went: this process, the S3 server, the proxy, others
        batched = random_access(url, data, indexes)
    in_turn = split_reader(url, indexes)
    run.proxy.reset()
    single = one_at_a_time(url, indexes[: args.single])
    requests = len(run.proxy.requests())
    table = Table(f"S3 behind {args.delay_ms:g} ms a request, {data.title()}", label_width=34)
    table.row("copy-first (stage, then tf.data)", rate_cell(staged.per_s, "records/s"),
              f"(copy {copy_s:.2f} s, {per_second(data.megabytes, copy_s):.1f} MB/s; then tf.data "
              f"{staged.seconds - copy_s:.2f} s)")  # fmt: skip
    table.row(f"read_records, {batched.records:,} at once", rate_cell(batched.per_s, "records/s"),
              f"ratio {ratio(batched.per_s, staged.per_s):.2f} vs copy-first, {ratio(batched.per_s, local_tf):.3f} "
              f"vs local tf.data; {1000 * batched.extra['cpu_s'] / max(batched.records, 1):.1f} ms CPU a record "
              "in this process")  # fmt: skip
    table.line(phase.cpu_line(os.cpu_count() or 1), indent=4)
    table.row(f"SplitReader[k] x {in_turn.records:,}, in turn", rate_cell(in_turn.per_s, "records/s"),
              "(one ranged GET a record, one at a time)")  # fmt: skip
    table.row(f"read_record x {single.records:,}, in turn", rate_cell(single.per_s, "records/s"),
              f"({requests / max(single.records, 1):.1f} requests a record: the manifest, then the range)")  # fmt: skip
    table.note("tf.data, TFDS and the tfrecord package read no s3:// here (TF 2.15 without tensorflow-io; the "
               "package opens local files): they read a staged copy")  # fmt: skip
    results = {
        "copy_first": {"records_per_s": staged.per_s, "copy_s": copy_s, "seconds": staged.seconds},
        "read_records": {"records": batched.records, "seconds": batched.seconds, "records_per_s": batched.per_s,
                         "cpu_s": batched.extra["cpu_s"], **phase_dict(phase)},
        "split_reader": {"records": in_turn.records, "seconds": in_turn.seconds, "records_per_s": in_turn.per_s},
        "read_record": {"records": single.records, "seconds": single.seconds, "records_per_s": single.per_s,
                        "requests": requests},
    }  # fmt: skip
    return table, results


# The S3 sections, each given (tf, run, data, local tf.data records/s) -> (table, results).
S3_SECTIONS: dict[str, Callable[..., tuple[Table, dict[str, Any]]]] = {"readers": s3_section}


def with_s3(tf: Any, args: argparse.Namespace, datasets: list[Data], local_rates: dict[str, float]) -> dict:
    from dataset.object_store import s3_filesystem
    from tests.latency_proxy import LatencyProxy
    from tests.s3server import s3_server

    results: dict[str, Any] = {}
    saved = {key: os.environ.get(key) for key in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                                  "AWS_REGION", "AWS_DEFAULT_REGION")}  # fmt: skip
    with (
        s3_server("s3proxy", bucket="bucket", store="filesystem") as s3,  # the photos are not for its 1 GB heap
        LatencyProxy("127.0.0.1", s3.port, delay_ms=args.delay_ms, process=True) as proxy,
    ):
        run = S3Run(args, s3, proxy)
        direct = s3_filesystem(s3.env())
        for data in datasets:
            with timed() as upload:
                direct.put(str(data.path), f"{s3.bucket}/{data.name}", recursive=True)
            run.urls[data.name] = f"s3://{s3.bucket}/{data.name}"
            print(f"  uploaded the {data.name} ({data.megabytes:.0f} MB) in {upload.seconds:.1f} s", flush=True)
        os.environ.update(s3.env(proxy.endpoint))  # every reader below goes through the proxy
        try:
            for data in datasets:
                for name, section in S3_SECTIONS.items():
                    table, figures = section(tf, run, data, local_rates[data.name])
                    table.print()
                    results[f"{data.name}/{name}"] = figures
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    return results


# --------------------------------------------------------------------------- the run


def measure(args: argparse.Namespace) -> int:
    print(f"Preparing data in {args.workdir}", flush=True)
    datasets = ensure_datasets(args)
    tf = import_tensorflow()
    local: dict[str, Any] = {}
    for data in datasets:
        table, local[data.name] = local_section(tf, args, data)
        table.print()
    rates = {name: figures["readers"]["tf.data"]["records_per_s"] for name, figures in local.items()}
    s3 = with_s3(tf, args, datasets, rates) if "s3" in args.sections else {}
    write_results(args, local=local, s3=s3, delay_ms=args.delay_ms, random=args.random, single=args.single,
                  rounds=args.rounds, datasets={d.name: str(d.path) for d in datasets})  # fmt: skip
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=int, default=5000, help="photos to generate and convert")
    parser.add_argument("--random", type=int, default=1000, help="random indexes read by read_records")
    parser.add_argument("--single", type=int, default=100, help="of those, read one at a time by read_record")
    parser.add_argument("--rounds", type=int, default=9, help="rounds of every local reader, the best counts")
    parser.add_argument("--min-records", type=int, default=20000,
                        help="records a timed pass of tf.data and TFDS reads at least (whole epochs of the split)")  # fmt: skip
    parser.add_argument("--delay-ms", type=float, default=20.0, help="latency the proxy adds to every S3 request")
    parser.add_argument("--sections", nargs="+", default=["local", "s3"], choices=("local", "s3"),
                        help="local disk only, or also S3 behind the proxy")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="the random indexes")
    add_run_arguments(parser, "readers", "generated images, their datasets, results.json")
    add_spark_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [WORKER_COMMAND]:
        return run_worker(argv[1:])
    parser = build_parser()
    least = {"photos": 4, "random": 1, "single": 1, "rounds": 1, "min_records": 1}
    with benchmark_run(parser, argv, "readers", SMOKE, least) as args:
        return measure(args)


if __name__ == "__main__":
    sys.exit(main())
