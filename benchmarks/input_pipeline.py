"""Benchmark: can the training input pipeline feed an accelerator? Records/s per core against Pillow.

    python -m benchmarks.input_pipeline                               # 1,000 generated 500x375 JPEG photos
    python -m benchmarks.input_pipeline --data DATASET --split train  # any image dataset the converter wrote
    python -m benchmarks.input_pipeline --smoke                       # 24 photos, 1 s per side

Both sides do the same work per image, on the same encoded bytes: decode the photo, take an
ImageNet random resized crop (8-100 % of the area, aspect ratio 3/4-4/3), flip it at random and
resize it to `--image-size` (float32 in [0, 1]).

* tf.data: the training `input_fn` exactly as a training run builds it (`split_input_spec` with
  the resolved hyper-parameters and `training=True`, then `train_input_fn`: shuffled shards,
  interleave, shuffle, batch, parse, crop-window JPEG decoding, prefetch) with `--threads`
  tf.data threads, iterated for `--seconds` after a warm-up; no model.
* Pillow: one Python loop, as a PyTorch-style loader worker runs it (`Image.open`, the same crop
  window distribution, `resize(..., BILINEAR, box=window)` as torchvision's RandomResizedCrop,
  flip, to float32), over the same records held in memory (so it does no I/O at all).

Per core means per CPU-second the process used (user + system, all threads; getrusage), so a
machine shared with other jobs does not count against either side. The figures: records/s in
total and per core, the ratio tf.data/Pillow per core (target >= 1.5), and the cores needed to
feed 4,667 images/s (ResNet-50 training in bf16 on one H200, measured on a lent host). The two
sides alternate in `--rounds` rounds so that a change of load weighs on both.

Without `--data` a photo dataset is generated under `--workdir` (reused while complete): 500x375
JPEGs of ~50 KB (smooth colour gradients plus noise, so they compress like photos) in 4 label
folders, converted by the project's Spark converter without `--resize`.
"""

from __future__ import annotations

if not __package__:  # run by path, `python benchmarks/input_pipeline.py`: import as `-m` does
    import _repo_root  # noqa: F401

import argparse
import io
import math
import resource
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

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
    start_spark,
    timed,
    write_results,
)
from dataset.errors import PipelineError
from dataset.manifest import Manifest
from dataset.versions import read_manifest
from jobs.spark_cli import add_spark_arguments

GPU_IMAGES_PER_S = 4667  # ResNet-50, bf16, 224x224, one H200 (measured on a lent host)
PHOTO_SIZE = (500, 375)  # width, height
PHOTO_QUALITY = 90
LABELS = ("a", "b", "c", "d")
NUM_SHARDS = 4
PILLOW_RECORDS = 256  # distinct records the Pillow loop cycles over
WARMUP_BATCHES = 3
SMOKE = {"images": 24, "seconds": 1.0, "batch_size": 8, "rounds": 1}
TARGETS = {"ratio_per_core": Target(">=", 1.5)}


@dataclass(frozen=True)
class Side:
    """One side's measured totals: records, wall seconds and CPU seconds (all threads of the process)."""

    records: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0

    def __add__(self, other: Side) -> Side:
        return Side(self.records + other.records, self.wall_s + other.wall_s, self.cpu_s + other.cpu_s)

    @property
    def per_s(self) -> float:
        return per_second(self.records, self.wall_s)

    @property
    def per_core(self) -> float:
        return per_second(self.records, self.cpu_s)

    @property
    def cores(self) -> float:
        return ratio(self.cpu_s, self.wall_s)


def cpu_seconds() -> float:
    """User + system CPU seconds of this process so far, all its threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --------------------------------------------------------------------------- the generated photos


def photo_jpeg(index: int) -> bytes:
    """A 500x375 JPEG of about 50 KB: smooth colour gradients and blobs with sensor-like noise."""
    rng = np.random.default_rng(index)
    width, height = PHOTO_SIZE
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    channels = []
    for _ in range(3):
        field = rng.uniform(40, 200) + rng.uniform(-0.2, 0.2) * x + rng.uniform(-0.2, 0.2) * y
        for _ in range(3):  # a few soft waves, like light and shapes in a scene
            fx, fy, phase = rng.uniform(0.005, 0.04), rng.uniform(0.005, 0.04), rng.uniform(0, 6.3)
            field += rng.uniform(10, 40) * np.sin(fx * x + fy * y + phase)
        channels.append(field)
    pixels = np.stack(channels, axis=-1) + rng.normal(0, 8.0, (height, width, 3))
    out = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB").save(out, format="JPEG", quality=PHOTO_QUALITY)
    return out.getvalue()


def ensure_photos(root: Path, count: int) -> bool:
    """`count` photos spread over the label folders of `root`, reused when complete; whether they were made."""
    if root.is_dir() and len(list(root.glob("*/*.jpg"))) == count:
        print(f"  reusing {count:,} photos in {root}", flush=True)
        return False
    shutil.rmtree(root, ignore_errors=True)
    sizes = []
    with timed() as making:
        for index in range(count):
            path = root / LABELS[index % len(LABELS)] / f"{index:06d}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            data = photo_jpeg(index)
            path.write_bytes(data)
            sizes.append(len(data))
    print(
        f"  generated {count:,} JPEG {PHOTO_SIZE[0]}x{PHOTO_SIZE[1]} (mean {np.mean(sizes) / 1000:.0f} KB) "
        f"in {making.seconds:.1f} s",
        flush=True,
    )
    return True


def ensure_dataset(args: argparse.Namespace) -> Path:
    """The converted photo dataset under the work folder (one split, `train`), converted unless complete."""
    from conversion.images.convert import convert_images
    from conversion.images.options import ImageConvertOptions

    photos, dataset = args.workdir / "photos", args.workdir / "dataset"
    made = ensure_photos(photos, args.images)
    if not made:
        try:
            manifest = read_manifest(str(dataset))
            if manifest.num_files_seen == args.images and manifest.source_root == str(photos):
                print(f"  reusing the dataset in {dataset}", flush=True)
                return dataset
        except PipelineError:
            pass
    spark, _ = start_spark(args, "benchmark_input_pipeline", "local[2]")
    try:
        options = ImageConvertOptions(
            str(photos), str(dataset), splits=(("train", 1.0),), num_shards=NUM_SHARDS, mode="overwrite"
        )
        with timed() as conversion:
            convert_images(spark, options)
    finally:
        spark.stop()  # its JVM would compete for the cores being measured
    print(f"  converted them with the Spark job in {conversion.seconds:.1f} s", flush=True)
    return dataset


# --------------------------------------------------------------------------- the two sides


def train_pipeline(data: str, manifest: Manifest, args: argparse.Namespace) -> Any:
    """The training `input_fn`'s dataset, built as training builds it, for the photos' hyper-parameters."""
    from training.config import TrainConfig, resolve_params
    from training.input import train_input_fn
    from training.kinds import kind_for, split_input_spec

    config = TrainConfig(data=data, model_dir="", batch_size=args.batch_size)
    overrides = {"image_size": [args.image_size, args.image_size], "augment": args.augment}
    params = resolve_params(kind_for(manifest).default_params, overrides)
    spec = split_input_spec(data, manifest, args.split, params, args.threads, training=True)
    steps = 10**9  # more than any run takes: the loop stops on time
    return train_input_fn(spec, config.batch_size, steps, 0, 1, config.seed, config.shuffle_buffer)()


def time_tf(batches: Any, seconds: float) -> Side:
    """Iterate `batches` (already warm) for about `seconds`; the records, wall and CPU seconds."""
    records = 0
    cpu, start = cpu_seconds(), time.perf_counter()
    while time.perf_counter() - start < seconds:
        _, labels = next(batches)
        records += int(labels.shape[0])
    return Side(records, time.perf_counter() - start, cpu_seconds() - cpu)


def sample_records(tf: Any, data: str, manifest: Manifest, split: str, count: int) -> list[bytes]:
    """The encoded images of the first `count` records of the split (Pillow's input, held in memory)."""
    from dataset.features import IMAGE_ENCODED
    from dataset.layout import tf_compression
    from dataset.manifest import shard_urls

    files = shard_urls(data, manifest, split, non_empty=True)
    records = tf.data.TFRecordDataset(files, compression_type=tf_compression(manifest.compression)).take(count)
    spec = manifest.tf_feature_spec([IMAGE_ENCODED])
    return [tf.io.parse_single_example(r, spec)[IMAGE_ENCODED].numpy() for r in records]


def pillow_window(rng: np.random.Generator, width: int, height: int) -> tuple[int, int, int, int]:
    """A random (left, top, right, bottom) window: 8-100 % of the area, aspect 3/4-4/3, else the whole image."""
    for _ in range(10):
        area = rng.uniform(0.08, 1.0) * width * height
        aspect = rng.uniform(3 / 4, 4 / 3)
        crop_w, crop_h = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
        if 0 < crop_w <= width and 0 < crop_h <= height:
            left, top = int(rng.integers(width - crop_w + 1)), int(rng.integers(height - crop_h + 1))
            return left, top, left + crop_w, top + crop_h
    return 0, 0, width, height


def pillow_augment(data: bytes, rng: np.random.Generator, size: int) -> np.ndarray:
    """Decode, random resized crop (torchvision's: bilinear resize of the window), random flip, float32 in [0, 1]."""
    image = Image.open(io.BytesIO(data))
    image = image.convert("RGB")  # decodes
    out = image.resize((size, size), Image.BILINEAR, box=pillow_window(rng, *image.size))
    if rng.random() < 0.5:
        out = out.transpose(Image.FLIP_LEFT_RIGHT)
    return np.asarray(out, dtype=np.float32) / 255.0


def time_pillow(records: list[bytes], size: int, seconds: float, seed: int) -> Side:
    """The Pillow loop over `records` (cycled) for about `seconds`."""
    rng = np.random.default_rng(seed)
    done = 0
    cpu, start = cpu_seconds(), time.perf_counter()
    while time.perf_counter() - start < seconds:
        image = pillow_augment(records[done % len(records)], rng, size)
        done += 1
    if image.shape != (size, size, 3):
        raise RuntimeError(f"Pillow produced {image.shape}, not {(size, size, 3)}")
    return Side(done, time.perf_counter() - start, cpu_seconds() - cpu)


# --------------------------------------------------------------------------- the run


def report(title: str, tf_side: Side, pillow: Side, figures: Figures) -> Table:
    table = Table(title, label_width=30)
    table.row("Pillow loop", rate_cell(pillow.per_s, "records/s"), f"{pillow.cores:.2f} cores used")
    table.row("tf.data train_input_fn", rate_cell(tf_side.per_s, "records/s"), f"{tf_side.cores:.2f} cores used")
    table.line(f"records/s per core: {tf_side.per_core:.0f}   (Pillow: {pillow.per_core:.0f})")
    name = "ratio_per_core"
    table.figure("ratio per core", figures.values[name], figures.target(name), "(tf.data / Pillow records/s per core)")
    table.row(
        f"cores to feed {GPU_IMAGES_PER_S:,} images/s",
        f"{figures.values['cores_to_feed_gpu']:>11.1f}",
        f"(Pillow: {figures.values['pillow_cores_to_feed_gpu']:.1f}; ResNet-50 bf16 on one H200)",
    )
    return table


def measure(args: argparse.Namespace) -> int:
    """Prepare or open the dataset, then time Pillow and tf.data in alternation."""
    print(f"Preparing data in {args.workdir}", flush=True)
    data = args.data or str(ensure_dataset(args))
    tf = import_tensorflow()
    try:
        manifest = read_manifest(data)
        if manifest.kind != "images":
            print(f"error: {data} is a {manifest.kind} dataset; this benchmark needs images", file=sys.stderr)
            return 2
        batches = iter(train_pipeline(data, manifest, args))
        records = sample_records(tf, data, manifest, args.split, PILLOW_RECORDS)
    except PipelineError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    with timed() as warmup:
        for _ in range(WARMUP_BATCHES):
            next(batches)
    time_pillow(records, args.image_size, min(1.0, args.seconds), args.seed)  # warm-up
    print(
        f"  warm-up done in {warmup.seconds:.1f} s; timing {args.rounds} round(s) of {args.seconds:g} s per side",
        flush=True,
    )
    tf_side, pillow = Side(), Side()
    for round_ in range(args.rounds):
        pillow = pillow + time_pillow(records, args.image_size, args.seconds, args.seed + round_)
        tf_side = tf_side + time_tf(batches, args.seconds)
    figures = Figures(targets=dict(TARGETS))
    figures.add("tf_records_per_s", tf_side.per_s)
    figures.add("tf_records_per_s_per_core", tf_side.per_core)
    figures.add("tf_cores_used", tf_side.cores)
    figures.add("pillow_records_per_s_per_core", pillow.per_core)
    figures.add("ratio_per_core", ratio(tf_side.per_core, pillow.per_core))
    figures.add("cores_to_feed_gpu", ratio(GPU_IMAGES_PER_S, tf_side.per_core))
    figures.add("pillow_cores_to_feed_gpu", ratio(GPU_IMAGES_PER_S, pillow.per_core))
    mean_kb = np.mean([len(r) for r in records]) / 1000
    title = (
        f"input pipeline: {manifest.num_records:,} records (mean {mean_kb:.0f} KB), {args.image_size}x{args.image_size}, "
        f"augment {args.augment}, batch {args.batch_size}, {args.threads} tf.data threads"
    )
    report(title, tf_side, pillow, figures).print()
    write_results(
        args,
        data=data,
        split=args.split,
        image_size=args.image_size,
        augment=args.augment,
        threads=args.threads,
        batch_size=args.batch_size,
        gpu_images_per_s=GPU_IMAGES_PER_S,
        tf={"records": tf_side.records, "wall_s": tf_side.wall_s, "cpu_s": tf_side.cpu_s},
        pillow={"records": pillow.records, "wall_s": pillow.wall_s, "cpu_s": pillow.cpu_s},
        figures=figures.as_dict(),
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    import os

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", help="an image dataset folder; default: generate and convert photos")
    parser.add_argument("--split", default="train", help="the split to read")
    parser.add_argument("--image-size", type=int, default=224, help="the model's input size (square)")
    parser.add_argument("--augment", default="imagenet", choices=("imagenet", "none"), help="the augment parameter")
    parser.add_argument("--seconds", type=float, default=15.0, help="timed seconds per side and round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of Pillow then tf.data")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="tf.data threads")
    parser.add_argument("--batch-size", type=int, default=64, help="per-process batch")
    parser.add_argument("--images", type=int, default=1000, help="photos to generate (without --data)")
    parser.add_argument("--seed", type=int, default=0, help="Pillow's crop and flip draws")
    add_run_arguments(parser, "input_pipeline", "generated photos, their dataset, results.json")
    add_spark_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    least = {"image_size": 1, "threads": 1, "batch_size": 1, "images": len(LABELS), "rounds": 1}
    with benchmark_run(parser, argv, "input_pipeline", SMOKE, least) as args:
        return measure(args)


if __name__ == "__main__":
    sys.exit(main())
