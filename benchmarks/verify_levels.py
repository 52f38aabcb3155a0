"""What each `--verify` level costs per image, against the header check, and against training's decode.

Two workloads, generated in code:
* small files: 64x64 RGB PNGs (a few KB each);
* photos: 4000x3000 (12 MP) JPEGs of a smooth scene with noise, quality 90.

For each, `check_image` runs at `header` (the baseline), `decode` (the default) and `full`, and
`tf.io.decode_image` (what training pays per image and epoch) is timed too. Printed: milliseconds
per image and the ratio level/header.

python -m benchmarks.verify_levels [--small-files N] [--photos N] [--smoke]
"""

from __future__ import annotations

if not __package__:  # run by path, `python benchmarks/verify_levels.py`: import as `-m` does
    import _repo_root  # noqa: F401

import argparse
import io
import statistics
import sys

import numpy as np
from PIL import Image

from benchmarks.harness import Table, add_run_arguments, benchmark_run, import_tensorflow, ratio, timed, write_results
from conversion.images.check import check_image
from conversion.images.options import VERIFY_LEVELS, ImageTransform

REPEATS = 3  # the lowest of these many passes is kept


def small_pngs(count: int) -> list[bytes]:
    rng = np.random.default_rng(0)
    out = []
    for _ in range(count):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buffer, format="PNG")
        out.append(buffer.getvalue())
    return out


def photos(count: int, size: tuple[int, int]) -> list[bytes]:
    width, height = size
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    out = []
    for i in range(count):
        scene = np.stack([np.sin(x / (50 + 10 * i)), np.cos(y / 70), np.sin((x + y) / 90)], axis=-1) * 100 + 128
        pixels = np.clip(scene + rng.normal(0, 12, scene.shape), 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
        out.append(buffer.getvalue())
    return out


def per_image_ms(images: list[bytes], work) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        with timed() as timing:
            for data in images:
                work(data)
        best = min(best, timing.seconds)
    return 1000 * best / len(images)


def measure(title: str, images: list[bytes], tf) -> dict[str, float]:
    figures = {
        level: per_image_ms(images, lambda data, t=ImageTransform(verify=level): check_image(data, t))
        for level in VERIFY_LEVELS
    }
    figures["tf_decode"] = per_image_ms(
        images, lambda data: tf.io.decode_image(data, channels=3, expand_animations=False)
    )
    table = Table(f"{title} ({statistics.mean(len(d) for d in images) / 1e3:,.0f} KB each)")
    for name, value in figures.items():
        table.row(name, f"{value:10.3f} ms/image", f"ratio {name}/header {ratio(value, figures['header']):8.2f}")
    table.print()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="verify_levels", description=__doc__.splitlines()[0])
    parser.add_argument("--small-files", type=int, default=500, help="64x64 PNGs")
    parser.add_argument("--photos", type=int, default=4, help="12 MP JPEGs")
    add_run_arguments(parser, "verify_levels", "where results.json goes")
    with benchmark_run(
        parser, argv, "verify_levels", {"small_files": 20, "photos": 1}, {"small_files": 1, "photos": 1}
    ) as args:
        tf = import_tensorflow()
        size = (400, 300) if args.smoke else (4000, 3000)
        small = measure(f"small files: {args.small_files} PNG 64x64 RGB", small_pngs(args.small_files), tf)
        big = measure(f"photos: {args.photos} JPEG {size[0]}x{size[1]} q90", photos(args.photos, size), tf)
        write_results(args, small_png_ms=small, photo_jpeg_ms=big)
    return 0


if __name__ == "__main__":
    sys.exit(main())
