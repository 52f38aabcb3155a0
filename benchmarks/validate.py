"""Benchmark: `validate` (every record read once: frames, CRCs, index, features, counts, every image decoded)
against one tf.data pass that reads and decodes every record of the same shards, in the same run.

    python -m benchmarks.validate                                  # 50,000 PNGs 64x64, generated in --workdir
    python -m benchmarks.validate --pool /work/benchdata/pool-small-101000/images   # reuse a generated tree
    python -m benchmarks.validate --smoke

The images are benchmarks/convert_images.py's small files (64x64 PNGs, image N is the same file whoever generates
it): generated in the work folder, or linked from the first `--images` files of a tree that benchmark generated
(`--pool`). They are converted once (the Spark job, `--verify decode`, default shard sizes) and the dataset is kept
for later runs. Then, after one warm-up of each, the two are timed alternately `--repeats` times; the lowest of
each is kept. Printed: wall seconds and CPU seconds (this process, all threads) of each, the ratio validate/tf.data
(target <= 1.2), and validate's phases (manifest, listing, the one pass, the unlisted-files note).
"""

from __future__ import annotations

if not __package__:  # run by path, `python benchmarks/validate.py`: import as `-m` does
    import _repo_root  # noqa: F401

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

from benchmarks.convert_images import SMALL_SIZE, Workload, _label_path, ensure_data, generate_small
from benchmarks.harness import Table, Target, add_run_arguments, benchmark_run, import_tensorflow, ratio, write_results
from conversion.images.options import ImageTransform
from jobs.spark_cli import add_spark_arguments

TARGET = Target("<=", 1.2)
MARKER = "dataset.json"


def linked_images(pool: Path, count: int, folder: Path) -> Path:
    """`folder/images`: symbolic links to images 0..count-1 of a generated small-files tree `pool`."""
    images = folder / "images"
    marker = folder / "images.json"
    spec = {"pool": str(pool), "count": count}
    if marker.exists() and json.loads(marker.read_text()) == spec:
        return images
    for index in range(count):
        source = _label_path(pool, index, ".png")
        if not source.is_file():
            raise SystemExit(f"error: {pool} has no image {index} ({source}): pass a smaller --images or no --pool")
        link = _label_path(images, index, ".png")
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to(source)
    marker.write_text(json.dumps(spec))
    return images


def ensure_dataset(args: argparse.Namespace, images: Path) -> Path:
    """The converted dataset of `images` (converted unless a dataset of the same images is there)."""
    data = args.workdir / f"dataset-{args.images}"
    marker = args.workdir / MARKER
    spec = {"images": str(images), "count": args.images, "verify": "decode"}
    if marker.exists() and json.loads(marker.read_text()) == spec and (data / "_SUCCESS").exists():
        print(f"  reusing the dataset {data}", flush=True)
        return data
    from benchmarks.harness import start_spark
    from conversion.images.convert import convert_images
    from conversion.images.options import ImageConvertOptions

    spark, _ = start_spark(args, "benchmark_validate", "local[2]")
    try:
        options = ImageConvertOptions(
            str(images), str(data), mode="overwrite", transform=ImageTransform(verify="decode")
        )
        convert_images(spark, options)
    finally:
        spark.stop()
    marker.write_text(json.dumps(spec))
    return data


def tf_data_pass(tf: Any, data: str) -> Callable[[], int]:
    """One pass of tf.data over every shard of the dataset: read, parse `image/encoded`, decode (AUTOTUNE)."""
    from dataset.decode import decode_image
    from dataset.layout import tf_compression
    from dataset.manifest import shard_urls
    from dataset.versions import read_manifest

    manifest = read_manifest(data)
    files = [url for split in sorted(manifest.splits) for url in shard_urls(data, manifest, split)]
    spec = {"image/encoded": tf.io.FixedLenFeature([], tf.string)}

    def decoded(serialized: Any) -> Any:
        return tf.shape(decode_image(tf.io.parse_single_example(serialized, spec)["image/encoded"], 3))[0]

    def run() -> int:
        records = tf.data.TFRecordDataset(files, compression_type=tf_compression(manifest.compression))
        count = 0
        for batch in records.map(decoded, num_parallel_calls=tf.data.AUTOTUNE).batch(1024).prefetch(2):
            count += int(batch.shape[0])
        return count

    return run


def validate_pass(data: str, phases: dict[str, float]) -> Callable[[], int]:
    """`validate_dataset(data)` (every image decoded); its phases' seconds go into `phases`."""
    from dataset.check import validate_dataset

    def run() -> int:
        report = validate_dataset(data)
        if report.num_decoded != report.num_records:
            raise SystemExit(f"error: validate decoded {report.num_decoded} of {report.num_records} images")
        phases.clear()
        phases.update(report.seconds)
        return report.num_records

    return run


def best_of(runs: list[tuple[float, float]]) -> tuple[float, float]:
    """The lowest wall seconds and the lowest CPU seconds of `runs`."""
    return min(wall for wall, _ in runs), min(cpu for _, cpu in runs)


def measured(work: Callable[[], int]) -> tuple[float, float, int]:
    wall, cpu = time.perf_counter(), time.process_time()
    count = work()
    return time.perf_counter() - wall, time.process_time() - cpu, count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.validate", description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=50_000, help=f"{SMALL_SIZE}x{SMALL_SIZE} PNGs in the dataset")
    parser.add_argument("--pool", type=Path, help="a small-files tree benchmarks/convert_images.py generated")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each (the lowest is kept)")
    add_run_arguments(parser, "validate", "images, the dataset, results.json")
    add_spark_arguments(parser)
    with benchmark_run(parser, argv, "validate", {"images": 300, "repeats": 1}, {"images": 1, "repeats": 1}) as args:
        if args.pool:
            images = linked_images(args.pool.resolve(), args.images, args.workdir / f"images-{args.images}")
        else:
            workload = Workload("small", "small files", args.images, ImageTransform(), generate_small)
            images, _ = ensure_data(workload, args.workdir / workload.folder_name, os.cpu_count() or 1)
        data = str(ensure_dataset(args, images))
        tf = import_tensorflow()
        phases: dict[str, float] = {}
        work = {"tf.data": tf_data_pass(tf, data), "validate": validate_pass(data, phases)}
        for function in work.values():  # warm-up: the page cache, TensorFlow's kernels
            function()
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in work}
        best_phases: dict[str, float] = {}
        for _ in range(args.repeats):
            for name, function in work.items():
                wall, cpu, count = measured(function)
                if name == "validate" and (not runs[name] or wall < min(w for w, _ in runs[name])):
                    best_phases = dict(phases)
                runs[name].append((wall, cpu))
        load = os.getloadavg()
        figures = {name: best_of(values) for name, values in runs.items()}
        value = ratio(figures["validate"][0], figures["tf.data"][0])
        table = Table(f"validate: {count:,} records, every image decoded, {os.cpu_count()} cores", 24)
        for name, (wall, cpu) in figures.items():
            table.row(name, f"{wall:9.2f} s", f"CPU {cpu:7.2f} s", f"{count / wall:8.0f} records/s")
        table.figure("ratio validate/tf.data", value, TARGET, "(wall; lowest of each)")
        table.row("ratio of CPU", f"{ratio(figures['validate'][1], figures['tf.data'][1]):11.2f}")
        table.line(
            "validate's phases: " + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in best_phases.items())
        )
        table.note(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end (1, 5, 15 min)")
        table.print()
        write_results(
            args,
            records=count,
            wall_s={name: wall for name, (wall, _) in figures.items()},
            cpu_s={name: cpu for name, (_, cpu) in figures.items()},
            ratio=TARGET.as_dict(value),
            phases_s=best_phases,
            runs=runs,
            load_average=load,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
