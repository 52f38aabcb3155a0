"""Benchmark: the Spark `convert_images` job against a plain single-process Python loop, fixed cost apart from throughput.

    python -m benchmarks.convert_images                       # both workloads: N = 50,000 small files, 5,000 photos
    python -m benchmarks.convert_images --workload small --small-files 2000 --cores 2
    python -m benchmarks.convert_images --smoke               # N = 200 PNGs + 20 photos, a temporary folder

Two workloads are generated (deterministically, seeded) into a pool under `--workdir`
(`pool-<workload>-<count>`, reused by later runs and by `benchmarks.incremental`):

* small files: 64x64 RGB PNGs of a few KB in 10 label folders; header check only.
* photos: ~100 KB JPEGs cut from scikit-learn's sample photographs (random crops, flips and
  scales) in 10 label folders; resized to 224x224 and re-encoded as JPEG.

Each workload runs at N and at 4N files (folders of hard links into the pool). The plain loop (os.walk,
`check_image`, a `tf.train.Example` per image, three `tf.io.TFRecordWriter` split files) converts N, then 4N;
the Spark job, in one SparkSession whose start is timed apart, converts N (the session's first job), 4N, then N
again. Printed: both sides' marginal rates (the 3N files between the runs), the job's fixed cost (session start,
the first job's extra, every job's own), the marginal efficiency against the cores' rate, the whole-run ratios,
and the CPU per marginal file of each process. The figures go to `<workdir>/results.json` (benchmarks/harness.py).
"""

from __future__ import annotations

if not __package__:  # run by path, `python benchmarks/convert_images.py`: import as `-m` does
    import _repo_root  # noqa: F401

import argparse
import hashlib
import io
import json
import multiprocessing
import os
import shutil
import sys
import time
import zlib
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import numpy as np
from PIL import Image

from benchmarks.harness import (
    MB,
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
    spark_cpu,
    start_spark,
    timed,
    write_results,
)
from conversion.images.check import ImageRecord, Rejected, check_image
from conversion.images.convert import ConversionSummary, convert_images
from conversion.images.options import ImageConvertOptions, ImageTransform
from dataset.errors import ConversionError
from dataset.features import IMAGE_EXTENSIONS
from jobs.spark_cli import add_spark_arguments

NUM_LABELS = 10
SEED = 20240601
GENERATOR_VERSION = 1  # bump when the generated data changes, so old trees are regenerated
MARKER = "generated.json"
SMALL_SIZE = 64
PHOTO_TARGET_BYTES = 100_000
PHOTO_QUALITY_RANGE = (40, 97)
LOOP_SPLITS = ("train", "validation", "test")
SMOKE = {"small_files": 200, "photos": 20, "num_shards": 2}  # --smoke: seconds, every code path


@dataclass(frozen=True)
class Workload:
    """One generated data set and the work done on each of its images."""

    name: str
    title: str
    count: int
    transform: ImageTransform
    generate_one: Callable[[tuple[Path, int]], int]
    targets: dict[str, Target] = field(default_factory=dict)

    @property
    def folder_name(self) -> str:
        """Folder of this workload (and size) under the work folder."""
        return f"{self.name}-{self.count}"


@dataclass(frozen=True)
class LoopResult:
    """What the plain Python loop did."""

    images: int
    rejected: int
    input_bytes: int
    bytes_written: int
    seconds: float
    cpu_s: float  # this process's CPU time during the loop


@dataclass(frozen=True)
class SparkRun:
    """One conversion by the Spark job in the benchmark's session (whose start is timed apart)."""

    images: int
    rejected: int
    input_bytes: int
    bytes_written: int
    retried_shards: int
    seconds: float  # the `convert_images` call, whole
    timings: dict[str, float]  # the conversion's own phases (ConversionSummary.timings)
    cpu: dict[str, float]  # CPU seconds used during the call: driver, jvm, python workers (harness.spark_cpu)


# --------------------------------------------------------------------------- data generation

_SAMPLE_PHOTOS: list[np.ndarray] = []


def _label_path(root: Path, index: int, extension: str) -> Path:
    """`root/class_LL/img_NNNNNN.ext`, the label being `index % NUM_LABELS`."""
    return root / f"class_{index % NUM_LABELS:02d}" / f"img_{index:06d}{extension}"


def _rng(kind: str, index: int) -> np.random.Generator:
    """The seeded generator of one file (independent of the process that makes it)."""
    return np.random.default_rng([SEED, zlib.crc32(kind.encode()), index])


def small_png(index: int) -> bytes:
    """A 64x64 RGB PNG of a few KB: a per-channel colour gradient plus light noise."""
    rng = _rng("small", index)
    y, x = np.mgrid[0:SMALL_SIZE, 0:SMALL_SIZE].astype(np.float32)
    base = rng.uniform(0, 255, 3)
    slopes = rng.uniform(-2.5, 2.5, (3, 2))
    channels = [base[c] + slopes[c, 0] * x + slopes[c, 1] * y for c in range(3)]
    pixels = np.stack(channels, axis=-1) + rng.integers(0, 4, (SMALL_SIZE, SMALL_SIZE, 3))
    out = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB").save(out, format="PNG")
    return out.getvalue()


def _jpeg(image: Image.Image, quality: int) -> bytes:
    """`image` encoded as JPEG at `quality`."""
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)
    return out.getvalue()


def _jpeg_near(image: Image.Image, target_bytes: int) -> bytes:
    """`image` as JPEG at the quality whose size is closest to `target_bytes` (bisection)."""
    low, high = PHOTO_QUALITY_RANGE
    best = _jpeg(image, low)
    while low < high:  # the highest quality whose file stays within the target
        middle = (low + high + 1) // 2
        data = _jpeg(image, middle)
        if len(data) <= target_bytes:
            low, best = middle, data
        else:
            high = middle - 1
    if low < PHOTO_QUALITY_RANGE[1]:
        above = _jpeg(image, low + 1)
        if abs(len(above) - target_bytes) < abs(len(best) - target_bytes):
            best = above
    return best


def photo_jpeg(index: int) -> bytes:
    """A ~100 KB photo: a random crop, flip and scale of a sample photograph, with sensor noise."""
    rng = _rng("photo", index)
    source = _SAMPLE_PHOTOS[int(rng.integers(len(_SAMPLE_PHOTOS)))]
    height, width = source.shape[:2]
    crop_h, crop_w = int(height * rng.uniform(0.6, 1.0)), int(width * rng.uniform(0.6, 1.0))
    top, left = int(rng.integers(height - crop_h + 1)), int(rng.integers(width - crop_w + 1))
    crop = source[top : top + crop_h, left : left + crop_w]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    scale = rng.uniform(0.9, 1.3) * 640 / max(crop_h, crop_w)
    size = (round(crop_w * scale), round(crop_h * scale))
    image = Image.fromarray(np.ascontiguousarray(crop)).resize(size, Image.BICUBIC)
    noisy = np.asarray(image, dtype=np.int16) + rng.integers(-3, 4, (size[1], size[0], 3), dtype=np.int16)
    return _jpeg_near(Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)), PHOTO_TARGET_BYTES)


def _write_file(path: Path, data: bytes) -> int:
    """Write `data` to `path` (making its folder) and return its size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return len(data)


def generate_small(job: tuple[Path, int]) -> int:
    """Pool task: write small PNG number `index` under `root`."""
    root, index = job
    return _write_file(_label_path(root, index, ".png"), small_png(index))


def generate_photo(job: tuple[Path, int]) -> int:
    """Pool task: write photo number `index` under `root`."""
    root, index = job
    return _write_file(_label_path(root, index, ".jpg"), photo_jpeg(index))


def _init_generator(sample_photos: list[np.ndarray]) -> None:
    """Pool initializer: hand the sample photographs to the worker."""
    _SAMPLE_PHOTOS[:] = sample_photos


def _marker(workload: Workload) -> dict[str, Any]:
    """What a complete generated tree of `workload` records about itself."""
    return {"workload": workload.name, "count": workload.count, "seed": SEED, "version": GENERATOR_VERSION}


def _tree_stats(root: Path) -> tuple[int, int]:
    """Read every file under `root` once (warming the page cache); return (files, bytes)."""
    files = total = 0
    for folder, _, names in os.walk(root):
        for name in names:
            with open(os.path.join(folder, name), "rb") as handle:
                total += len(handle.read())
            files += 1
    return files, total


def ensure_data(workload: Workload, base: Path, processes: int) -> tuple[Path, int]:
    """The images folder of `workload`, generated unless a complete copy exists; warms it.

    Returns the folder and the bytes it holds.
    """
    images = base / "images"
    marker_path = base / MARKER
    if marker_path.exists() and json.loads(marker_path.read_text()).get("spec") == _marker(workload):
        files, total = _tree_stats(images)
        if files == workload.count:
            print(f"  reusing {files:,} generated files ({total / MB:.1f} MB) in {images}", flush=True)
            return images, total
    shutil.rmtree(base, ignore_errors=True)
    images.mkdir(parents=True)
    with timed() as generation:
        from sklearn.datasets import load_sample_images  # only needed to generate photos

        samples = list(load_sample_images().images) if workload.name == "photos" else []
        jobs = ((images, index) for index in range(workload.count))
        with multiprocessing.Pool(processes, initializer=_init_generator, initargs=(samples,)) as pool:
            total = sum(pool.imap_unordered(workload.generate_one, jobs, chunksize=64))
    marker_path.write_text(json.dumps({"spec": _marker(workload), "files": workload.count, "bytes": total}))
    files, total = _tree_stats(images)
    print(
        f"  generated {files:,} files ({total / MB:.1f} MB) in {generation.seconds:.1f} s with {processes} processes",
        flush=True,
    )
    return images, total


def pool_for(workload: Workload, workdir: Path, needed: int, processes: int) -> tuple[Path, int]:
    """The generated files the runs draw from (`<workdir>/pool-<name>-<count>/images`) and their count.

    The smallest complete pool of this workload in `workdir` holding `needed` files, else the largest complete one
    (`linked_inputs` then repeats its files under new names), else a new pool of `needed` files.
    """
    counts = []
    for folder in workdir.glob(f"pool-{workload.name}-*"):
        try:
            spec = json.loads((folder / MARKER).read_text())["spec"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if folder.name == f"pool-{workload.name}-{spec.get('count')}" and spec == _marker(
            replace(workload, count=spec["count"])
        ):
            counts.append(spec["count"])
    enough = [count for count in counts if count >= needed]
    count = min(enough) if enough else max(counts) if counts else needed
    images, _ = ensure_data(replace(workload, count=count), workdir / f"pool-{workload.name}-{count}", processes)
    return images, count


def linked_inputs(pool: Path, pool_count: int, extension: str, folder: Path, count: int) -> Path:
    """`folder/images`: files 0..count-1 named as the generator names them, each a hard link to pool file
    `index % pool_count` (a pool smaller than `count` has its files repeated under new names: the same work per
    file). Reused while complete."""
    images, marker = folder / "images", folder / "linked.json"
    spec = {"pool": str(pool), "pool_count": pool_count, "count": count}
    if marker.exists() and json.loads(marker.read_text()) == spec:
        return images
    shutil.rmtree(folder, ignore_errors=True)
    for label in range(min(NUM_LABELS, count)):
        (images / f"class_{label:02d}").mkdir(parents=True)
    for index in range(count):
        source = _label_path(pool, index % pool_count, extension)
        os.link(source, _label_path(images, index, extension))
    marker.write_text(json.dumps(spec))
    return images


# --------------------------------------------------------------------------- the plain loop


def list_images(root: Path) -> list[tuple[str, str]]:
    """(relative path, label) of every image file under `root/<label>/`, sorted (os.walk)."""
    found = []
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        relfolder = os.path.relpath(folder, root)
        if relfolder == ".":
            continue
        label = relfolder.split(os.sep)[0]
        for name in sorted(names):
            if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                found.append((f"{relfolder}/{name}".replace(os.sep, "/"), label))
    return found


def loop_split(relpath: str) -> str:
    """A simple stable 80/10/10 split by a CRC of the relative path."""
    bucket = zlib.crc32(relpath.encode("utf-8")) % 10
    return LOOP_SPLITS[0] if bucket < 8 else LOOP_SPLITS[1] if bucket == 8 else LOOP_SPLITS[2]


def tf_example(tf: ModuleType, image: ImageRecord, label_id: int, label: str, relpath: str) -> bytes:
    """A serialized `tf.train.Example` with the standard image features, built with TensorFlow."""

    def as_bytes(value: bytes) -> Any:
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    def as_int(value: int) -> Any:
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))

    features = {
        "image/encoded": as_bytes(image.encoded),
        "image/format": as_bytes(image.format.encode("ascii")),
        "image/height": as_int(image.height),
        "image/width": as_int(image.width),
        "image/channels": as_int(image.channels),
        "image/class/label": as_int(label_id),
        "image/class/text": as_bytes(label.encode("utf-8")),
        "image/filename": as_bytes(relpath.encode("utf-8")),
        "image/key/sha256": as_bytes(hashlib.sha256(image.encoded).hexdigest().encode("ascii")),
    }
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def run_loop(tf: ModuleType, images: Path, output: Path, transform: ImageTransform) -> LoopResult:
    """Convert `images` into three TFRecord files, one image after another; timed from listing."""
    shutil.rmtree(output, ignore_errors=True)
    output.mkdir(parents=True)
    cpu_start = time.process_time()
    with timed() as timing:
        files = list_images(images)
        labels = {label: i for i, label in enumerate(sorted({label for _, label in files}))}
        writers = {split: tf.io.TFRecordWriter(str(output / f"{split}.tfrecord")) for split in LOOP_SPLITS}
        written = rejected = input_bytes = 0
        try:
            for relpath, label in files:
                with open(images / relpath, "rb") as handle:
                    data = handle.read()
                input_bytes += len(data)
                try:
                    record = check_image(data, transform)
                except Rejected:
                    rejected += 1
                    continue
                writers[loop_split(relpath)].write(tf_example(tf, record, labels[label], label, relpath))
                written += 1
        finally:
            for writer in writers.values():
                writer.close()
    cpu_s = time.process_time() - cpu_start
    bytes_written = sum(path.stat().st_size for path in output.iterdir())
    return LoopResult(written, rejected, input_bytes, bytes_written, timing.seconds, cpu_s)


# --------------------------------------------------------------------------- Spark


def run_spark(spark: Any, images: Path, output: Path, transform: ImageTransform, num_shards: int) -> SparkRun:
    """Convert `images` with the Spark job (overwriting `output`), with the CPU each process used meanwhile."""
    options = ImageConvertOptions(
        input=str(images),
        output=str(output),
        num_shards=num_shards,
        mode="overwrite",
        transform=transform,
        max_reject_fraction=0.05,
    )
    before = spark_cpu(spark)
    with timed() as job:
        summary: ConversionSummary = convert_images(spark, options)
    after = spark_cpu(spark)
    return SparkRun(
        images=sum(summary.records.values()),
        rejected=sum(summary.rejected.values()),
        input_bytes=summary.input_bytes,
        bytes_written=summary.bytes_written,
        retried_shards=summary.retried_shards,
        seconds=job.seconds,
        timings=dict(summary.timings),
        cpu={name: after[name] - before.get(name, 0.0) for name in after},
    )


# --------------------------------------------------------------------------- figures and report


def marginal(count: float, first: float, second: float) -> float:
    """`count` more of something in `second - first` seconds (or CPU seconds): per second."""
    return per_second(count, second - first)


def micros(seconds: float, count: int) -> float:
    """Seconds per item, in µs."""
    return ratio(seconds, count) * 1e6


@dataclass(frozen=True)
class Runs:
    """The runs of one workload: the loop at N and 4N, the Spark job at N (the session's first job), 4N, N again."""

    loop_n: LoopResult
    loop_4n: LoopResult
    spark_n_first: SparkRun
    spark_4n: SparkRun
    spark_n: SparkRun
    session_start_s: float


def figures(workload: Workload, runs: Runs, cores: int) -> dict[str, Any]:
    """All compared figures of one workload, with the targets and whether they are met.

    Marginal: what the 3N files between the warm run at N and the run at 4N cost. Fixed: what the run at N costs
    beyond N files at the marginal rate, plus the session start.
    """
    loop_n, loop_4n, first, spark_4n, spark_n = (
        runs.loop_n, runs.loop_4n, runs.spark_n_first, runs.spark_4n, runs.spark_n
    )  # fmt: skip
    more = spark_4n.images - spark_n.images
    loop_more = loop_4n.images - loop_n.images
    loop_rate = marginal(loop_more, loop_n.seconds, loop_4n.seconds)
    spark_rate = marginal(more, spark_n.seconds, spark_4n.seconds)
    per_job_s = spark_n.seconds - spark_n.images / spark_rate
    first_job_extra_s = first.seconds - spark_n.seconds
    derived = Figures(workload.targets)
    derived.add("marginal_efficiency", ratio(spark_rate, cores * loop_rate))
    derived.add("fixed_cost_s", runs.session_start_s + first_job_extra_s + per_job_s)
    derived.add("ratio_n", ratio(loop_n.seconds, runs.session_start_s + first.seconds))
    derived.add("ratio_4n", ratio(loop_4n.seconds, runs.session_start_s + first_job_extra_s + spark_4n.seconds))
    cpu = {name: micros(spark_4n.cpu[name] - spark_n.cpu.get(name, 0.0), more) for name in spark_4n.cpu}
    cpu["in tasks"] = micros(spark_4n.timings.get("tasks_cpu_s", 0.0) - spark_n.timings.get("tasks_cpu_s", 0.0), more)
    phases = {
        name: micros(spark_4n.timings[key] - spark_n.timings[key], more)
        for name, key in (("listing and planning", "listing_planning_s"), ("tasks", "work_s"), ("commit", "commit_s"))
    }
    return {
        "title": workload.title,
        "n": loop_n.images,
        "cores": cores,
        "session_start_s": runs.session_start_s,
        "loop_n": {**asdict(loop_n), "images_per_s": per_second(loop_n.images, loop_n.seconds)},
        "loop_4n": {**asdict(loop_4n), "images_per_s": per_second(loop_4n.images, loop_4n.seconds)},
        "spark_n_first": asdict(first),
        "spark_4n": asdict(spark_4n),
        "spark_n": asdict(spark_n),
        "loop_marginal_images_per_s": loop_rate,
        "loop_marginal_cpu_us_per_file": micros(loop_4n.cpu_s - loop_n.cpu_s, loop_more),
        "spark_marginal_images_per_s": spark_rate,
        "spark_marginal_cpu_us_per_file": cpu,
        "spark_marginal_wall_us_per_file": phases,
        "fixed_cost_parts_s": {
            "session start": runs.session_start_s,
            "first job": first_job_extra_s,
            "every job": per_job_s,
        },
        **derived.as_dict(),
    }


def _spark_row(table: Table, label: str, run: SparkRun) -> None:
    t = run.timings
    table.row(
        label,
        seconds_cell(run.seconds),
        rate_cell(per_second(run.images, run.seconds), "images/s"),
        f"(listing/planning {t['listing_planning_s']:.2f} s, tasks {t['work_s']:.2f} s, commit {t['commit_s']:.2f} s)",
    )


def report(workload: Workload, result: dict[str, Any]) -> Table:
    """The printed comparison of one workload."""
    cores, targets = result["cores"], workload.targets
    loop_n, loop_4n = result["loop_n"], result["loop_4n"]
    table = Table(f"{workload.title}; runs of N and 4N = {loop_4n['images']:,} files", label_width=26)
    for label, loop in (("python loop, N", loop_n), ("python loop, 4N", loop_4n)):
        table.row(
            label,
            seconds_cell(loop["seconds"]),
            rate_cell(loop["images_per_s"], "images/s"),
            f"(CPU {micros(loop['cpu_s'], loop['images']):.1f} µs/file)",
        )
    table.row(
        "loop marginal rate",
        rate_cell(result["loop_marginal_images_per_s"], "images/s", 11),
        f"(CPU {result['loop_marginal_cpu_us_per_file']:.1f} µs/file between N and 4N)",
    )
    _spark_row(table, "spark, N (first job)", from_dict(result["spark_n_first"]))
    _spark_row(table, "spark, 4N", from_dict(result["spark_4n"]))
    _spark_row(table, "spark, N again", from_dict(result["spark_n"]))
    table.row(
        "spark marginal rate",
        rate_cell(result["spark_marginal_images_per_s"], "images/s", 11),
        "(the 3N files between N again and 4N)",
    )
    table.figure(
        "marginal efficiency",
        result["marginal_efficiency"],
        targets.get("marginal_efficiency"),
        f"(spark marginal images/s / ({cores} cores x loop marginal images/s))",
    )
    parts = result["fixed_cost_parts_s"]
    table.figure(
        "fixed cost",
        result["fixed_cost_s"],
        targets.get("fixed_cost_s"),
        f"(session start {parts['session start']:.2f} s + first job's extra {parts['first job']:.2f} s "
        f"+ every job's own {parts['every job']:.2f} s)",
        unit="s",
    )
    table.figure(
        "ratio loop/spark, N", result["ratio_n"], None, "(whole runs, session start included; >1: Spark is faster)"
    )
    table.figure("ratio loop/spark, 4N", result["ratio_4n"], None, "(whole runs as a session's first job)")
    cpu = result["spark_marginal_cpu_us_per_file"]
    total = sum(value for name, value in cpu.items() if name != "in tasks")
    spark_parts = ", ".join(f"{name} {value:.1f}" for name, value in cpu.items() if name != "in tasks")
    table.line(
        f"CPU µs per marginal file: loop {result['loop_marginal_cpu_us_per_file']:.1f}; spark {total:.1f} "
        f"({spark_parts}; in the task function {cpu['in tasks']:.1f})"
    )
    phases = ", ".join(f"{name} {value:.1f}" for name, value in result["spark_marginal_wall_us_per_file"].items())
    table.line(f"wall µs per marginal file by phase: {phases}")
    runs = [result["spark_n_first"], result["spark_4n"], result["spark_n"]]
    if any(run["retried_shards"] for run in runs):
        table.warning("some Spark shard tasks were retried; the timings include them")
    if any(run["rejected"] for run in [*runs, loop_n, loop_4n]) or loop_4n["images"] != result["spark_4n"]["images"]:
        table.warning(
            f"loop wrote {loop_n['images']}/{loop_4n['images']}, Spark {result['spark_n']['images']}/"
            f"{result['spark_4n']['images']} (N/4N); some files were rejected"
        )
    return table


def from_dict(values: dict[str, Any]) -> SparkRun:
    return SparkRun(**values)


# --------------------------------------------------------------------------- command line


def workloads(args: argparse.Namespace) -> list[Workload]:
    """The workloads chosen on the command line."""
    chosen = []
    if args.workload in ("small", "both"):
        chosen.append(
            Workload(
                name="small",
                title=f"small files: {args.small_files:,} PNG {SMALL_SIZE}x{SMALL_SIZE} RGB, header check only",
                count=args.small_files,
                transform=ImageTransform(verify="header"),
                generate_one=generate_small,
                targets={"marginal_efficiency": Target(">=", 0.85), "fixed_cost_s": Target("<=", 6.0)},
            )
        )
    if args.workload in ("photos", "both"):
        chosen.append(
            Workload(
                name="photos",
                title=f"photos: {args.photos:,} JPEG ~{PHOTO_TARGET_BYTES // 1000} KB, resize 224x224 + JPEG q90",
                count=args.photos,
                transform=ImageTransform(resize=(224, 224), reencode="jpeg", jpeg_quality=90),
                generate_one=generate_photo,
                targets={"marginal_efficiency": Target(">=", 0.85)},
            )
        )
    return chosen


def build_parser() -> argparse.ArgumentParser:
    """The benchmark's options, plus the jobs' Spark options."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.convert_images",
        description="Time the Spark convert_images job against a plain single-process Python loop.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--workload", choices=["small", "photos", "both"], default="both", help="what to run")
    parser.add_argument("--small-files", type=int, default=50_000, help="N of the small PNGs (runs of N and 4N)")
    parser.add_argument("--photos", type=int, default=5_000, help="N of the ~100 KB photos (runs of N and 4N)")
    parser.add_argument(
        "--cores",
        type=int,
        default=os.cpu_count() or 1,
        help="local[N] Spark cores, generation processes and the per-core figures",
    )
    parser.add_argument("--num-shards", type=int, default=16, help="shards per split of the Spark job")
    add_run_arguments(
        parser,
        "convert_images",
        "generated data (pool-<workload>-<count>, reused), linked inputs, outputs, results.json",
    )
    add_spark_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Generate the data, run the loop and the Spark job per workload, print and save the figures."""
    parser = build_parser()
    least = {"small_files": 1, "photos": 1, "cores": 1, "num_shards": 1}
    with benchmark_run(parser, argv, "convert_images", SMOKE, least) as args:
        return measure(args)


def prepare(workload: Workload, args: argparse.Namespace) -> tuple[Path, Path]:
    """The input folders of N and 4N files of `workload` (hard links into its pool)."""
    pool, pool_count = pool_for(workload, args.workdir, 4 * workload.count, args.cores)
    extension = ".jpg" if workload.name == "photos" else ".png"
    if pool_count < 4 * workload.count:
        print(f"  the pool holds {pool_count:,} files: the 4N run repeats some of them under new names", flush=True)
    return tuple(  # type: ignore[return-value]
        linked_inputs(pool, pool_count, extension, args.workdir / f"{workload.name}-{count}", count)
        for count in (workload.count, 4 * workload.count)
    )


def measure(args: argparse.Namespace) -> int:
    """The benchmark proper, in `args.workdir`."""
    chosen = workloads(args)

    print(f"Preparing data in {args.workdir}", flush=True)
    print("Load average (1, 5, 15 min) at the start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()), flush=True)
    data = {w.name: prepare(w, args) for w in chosen}

    tf = import_tensorflow()
    spark, session_start_s = start_spark(args, "benchmark_convert_images", f"local[{args.cores}]")
    print(
        f"Spark {spark.version} on {args.master}: session started in {session_start_s:.2f} s. Per workload, the loop "
        "converts N then 4N files; the job converts N (its first job), 4N, then N again.\n",
        flush=True,
    )

    results: dict[str, Any] = {}
    try:
        for workload in chosen:
            small, large = data[workload.name]
            loop_n = run_loop(tf, small, small.parent / "loop_out", workload.transform)
            loop_4n = run_loop(tf, large, large.parent / "loop_out", workload.transform)
            convert = partial(run_spark, spark, transform=workload.transform, num_shards=args.num_shards)
            first = convert(small, small.parent / "spark_out")
            spark_4n = convert(large, large.parent / "spark_out")
            spark_n = convert(small, small.parent / "spark_out")
            start = session_start_s if not results else 0.0  # the session's start is charged to the first workload
            runs = Runs(loop_n, loop_4n, first, spark_4n, spark_n, start)
            results[workload.name] = figures(workload, runs, args.cores)
            report(workload, results[workload.name]).print()
    except ConversionError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        spark.stop()

    print("Load average (1, 5, 15 min) at the end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()), flush=True)
    write_results(
        args,
        cores=args.cores,
        master=args.master,
        num_shards=args.num_shards,
        spark_session_start_s=session_start_s,
        load_average=os.getloadavg(),
        note="the session's start is charged to the first workload's fixed cost and whole-run ratios",
        workloads=results,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
