"""Benchmark: the Spark `convert_images` job against a plain single-process Python loop.

    python -m benchmarks.convert_images                       # both workloads, default sizes
    python -m benchmarks.convert_images --workload small --small-files 2000 --cores 2
    python -m benchmarks.convert_images --smoke               # 200 PNGs + 20 photos, a temporary folder

Two workloads are generated (deterministically, seeded) under `--workdir` and reused by later
runs while complete:

* small files: 64x64 RGB PNGs of a few KB in 10 label folders; header check only.
* photos: ~100 KB JPEGs cut from scikit-learn's sample photographs (random crops, flips and
  scales) in 10 label folders; resized to 224x224 and re-encoded as JPEG.

Each workload is converted twice: by a plain Python loop (os.walk, `check_image`, a
`tf.train.Example` per image, three `tf.io.TFRecordWriter` split files) and by the Spark job.
One SparkSession serves both workloads; its start-up time is counted in the end-to-end time of
each of them. The comparison is printed (benchmarks/harness.py) and written to
`<workdir>/results.json`.
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
import zlib
from dataclasses import asdict, dataclass, field
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


@dataclass(frozen=True)
class SparkResult:
    """What the Spark job did, with the session start-up it is charged."""

    images: int
    rejected: int
    input_bytes: int
    bytes_written: int
    retried_shards: int
    session_start_s: float
    job_s: float
    timings: dict[str, float]

    @property
    def end_to_end_s(self) -> float:
        """Session start-up plus the whole job."""
        return self.session_start_s + self.job_s

    @property
    def fixed_cost_s(self) -> float:
        """Session start-up plus listing and planning."""
        return self.session_start_s + self.timings["listing_planning_s"]


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
    bytes_written = sum(path.stat().st_size for path in output.iterdir())
    return LoopResult(written, rejected, input_bytes, bytes_written, timing.seconds)


# --------------------------------------------------------------------------- Spark


def run_spark(
    spark: Any, session_start_s: float, images: Path, output: Path, transform: ImageTransform, num_shards: int
) -> SparkResult:
    """Convert `images` with the Spark job (overwriting `output`)."""
    options = ImageConvertOptions(
        input=str(images),
        output=str(output),
        num_shards=num_shards,
        mode="overwrite",
        transform=transform,
        max_reject_fraction=0.05,
    )
    with timed() as job:
        summary: ConversionSummary = convert_images(spark, options)
    return SparkResult(
        images=sum(summary.records.values()),
        rejected=sum(summary.rejected.values()),
        input_bytes=summary.input_bytes,
        bytes_written=summary.bytes_written,
        retried_shards=summary.retried_shards,
        session_start_s=session_start_s,
        job_s=job.seconds,
        timings=dict(summary.timings),
    )


# --------------------------------------------------------------------------- figures and report


def figures(workload: Workload, loop: LoopResult, spark: SparkResult, cores: int) -> dict[str, Any]:
    """All compared figures of one workload, with the targets and whether they are met."""
    loop_rate = per_second(loop.images, loop.seconds)
    work_s = spark.timings["work_s"]
    derived = Figures(workload.targets)
    derived.add("ratio", ratio(loop.seconds, spark.end_to_end_s))
    derived.add("fixed_cost_s", spark.fixed_cost_s)
    derived.add("efficiency", ratio(per_second(spark.images, work_s) / cores, loop_rate))
    return {
        "title": workload.title,
        "images": loop.images,
        "mb_read": loop.input_bytes / MB,
        "cores": cores,
        "loop": {
            **asdict(loop),
            "images_per_s": loop_rate,
            "mb_per_s": per_second(loop.input_bytes / MB, loop.seconds),
        },
        "spark": {
            **asdict(spark),
            "end_to_end_s": spark.end_to_end_s,
            "images_per_s": per_second(spark.images, spark.end_to_end_s),
            "mb_per_s": per_second(spark.input_bytes / MB, spark.end_to_end_s),
            "work_s": work_s,
            "work_images_per_s": per_second(spark.images, work_s),
        },
        **derived.as_dict(),
    }


def report(workload: Workload, result: dict[str, Any]) -> Table:
    """The printed comparison of one workload."""
    loop, spark, cores = result["loop"], result["spark"], result["cores"]
    timings = spark["timings"]
    targets = workload.targets
    table = Table(workload.title)
    table.row("images", f"{result['images']:>10,}", f"({result['mb_read']:.1f} MB read)")
    table.row(
        "python loop",
        seconds_cell(loop["seconds"]),
        rate_cell(loop["images_per_s"], "images/s"),
        rate_cell(loop["mb_per_s"], "MB/s", 7, 1),
    )
    table.row(
        "spark end-to-end",
        seconds_cell(spark["end_to_end_s"]),
        rate_cell(spark["images_per_s"], "images/s"),
        rate_cell(spark["mb_per_s"], "MB/s", 7, 1),
        f"(session start {spark['session_start_s']:.2f} s + job {spark['job_s']:.2f} s)",
    )
    table.figure("ratio loop/spark", result["ratio"], targets.get("ratio"), "(>1: Spark is faster)")
    table.figure(
        "fixed cost",
        result["fixed_cost_s"],
        targets.get("fixed_cost_s"),
        f"(session start {spark['session_start_s']:.2f} s + listing/planning {timings['listing_planning_s']:.2f} s)",
        unit="s",
    )
    table.row(
        "work phase",
        seconds_cell(spark["work_s"]),
        rate_cell(spark["work_images_per_s"], "images/s"),
        f"(commit {timings['commit_s']:.2f} s)",
    )
    table.figure(
        "per-core efficiency",
        result["efficiency"],
        targets.get("efficiency"),
        f"(work images/s / {cores} cores / loop images/s)",
    )
    if spark["retried_shards"]:
        table.warning(f"{spark['retried_shards']} Spark shard tasks were retried; the timing includes them")
    if loop["images"] != spark["images"] or loop["rejected"] or spark["rejected"]:
        table.warning(
            f"loop wrote {loop['images']} ({loop['rejected']} rejected), "
            f"Spark wrote {spark['images']} ({spark['rejected']} rejected)"
        )
    return table


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
                targets={
                    "ratio": Target(">=", 0.8),
                    "fixed_cost_s": Target("<=", 6.0),
                    "efficiency": Target(">=", 0.7),
                },
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
                targets={"ratio": Target(">=", 1.5)},
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
    parser.add_argument("--small-files", type=int, default=50_000, help="number of small PNGs")
    parser.add_argument("--photos", type=int, default=4_000, help="number of ~100 KB photos")
    parser.add_argument(
        "--cores",
        type=int,
        default=os.cpu_count() or 1,
        help="local[N] Spark cores, generation processes and the per-core figures",
    )
    parser.add_argument("--num-shards", type=int, default=16, help="shards per split of the Spark job")
    add_run_arguments(parser, "convert_images", "generated data, outputs, results.json")
    add_spark_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Generate the data, run the loop and the Spark job per workload, print and save the figures."""
    parser = build_parser()
    least = {"small_files": 1, "photos": 1, "cores": 1, "num_shards": 1}
    with benchmark_run(parser, argv, "convert_images", SMOKE, least) as args:
        return measure(args)


def measure(args: argparse.Namespace) -> int:
    """The benchmark proper, in `args.workdir`."""
    chosen = workloads(args)

    print(f"Preparing data in {args.workdir}", flush=True)
    data = {w.name: ensure_data(w, args.workdir / w.folder_name, args.cores) for w in chosen}

    tf = import_tensorflow()
    spark, session_start_s = start_spark(args, "benchmark_convert_images", f"local[{args.cores}]")
    print(
        f"Spark {spark.version} on {args.master}: session started in {session_start_s:.2f} s; that start-up is "
        "counted once in each workload's end-to-end time and fixed cost (the session is shared).\n",
        flush=True,
    )

    results: dict[str, Any] = {}
    try:
        for workload in chosen:
            images, _ = data[workload.name]
            base = args.workdir / workload.folder_name
            loop = run_loop(tf, images, base / "loop_out", workload.transform)
            spark_result = run_spark(
                spark, session_start_s, images, base / "spark_out", workload.transform, args.num_shards
            )
            results[workload.name] = figures(workload, loop, spark_result, args.cores)
            report(workload, results[workload.name]).print()
    except ConversionError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        spark.stop()

    write_results(
        args,
        cores=args.cores,
        master=args.master,
        num_shards=args.num_shards,
        spark_session_start_s=session_start_s,
        note="the Spark session is started once and its start-up is counted in every workload's end-to-end time",
        workloads=results,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
