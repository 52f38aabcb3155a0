"""What each `--verify` level costs per image, against the header check, and against training's decode.

Two workloads, generated in code:
* small files: 64x64 RGB PNGs (a few KB each);
* photos: 4000x3000 (12 MP) JPEGs of a smooth scene with noise, quality 90.

For each, `check_image` runs at `header` (the baseline), `decode` (the default) and `full`, and
`tf.io.decode_image` (what training pays per image and epoch) is timed too. Printed: milliseconds
per image and the ratio level/header.

Then, where Pillow and TensorFlow disagree (`conversion.images.tf_rules`): what the rules cost per file
against checking with `tf.io.decode_image` (which the conversion install does not have), on a small GIF,
an animated GIF, a PNG photo and the JPEG photo; and what turning a photo upright by its EXIF orientation
costs (a JPEG is re-encoded: time, size and difference to Pillow's upright pixels, with its own quantization
tables as conversion does, and at quality 95 for comparison).

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
from conversion.images.tf_rules import check_gif_pixels, training_reads

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


def gifs(count: int, size: tuple[int, int], frames: int) -> list[bytes]:
    rng = np.random.default_rng(2)
    out = []
    for _ in range(count):
        images = [Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)) for _ in range(frames)]
        images = [image.quantize(64) for image in images]
        buffer = io.BytesIO()
        images[0].save(buffer, format="GIF", save_all=frames > 1, append_images=images[1:])
        out.append(buffer.getvalue())
    return out


def png_photos(count: int, size: tuple[int, int]) -> list[bytes]:
    out = []
    for data in photos(count, size):
        buffer = io.BytesIO()
        Image.open(io.BytesIO(data)).save(buffer, format="PNG")
        out.append(buffer.getvalue())
    return out


def rules_ms(images: list[bytes], fmt: str) -> float:
    """The rules alone, on files already decoded by the default check (the GIF pixel check reads Pillow's)."""
    decoded = [Image.open(io.BytesIO(data)) for data in images]
    for image in decoded:
        image.load()

    def work(pair: tuple[bytes, Image.Image]) -> None:
        data, image = pair
        training_reads(data, fmt, image.size)
        if fmt == "gif":
            check_gif_pixels(image, data)

    return per_image_ms(list(zip(images, decoded)), work)


def measure_rules(workloads: list[tuple[str, str, list[bytes]]], tf) -> dict[str, dict[str, float]]:
    table = Table("where Pillow and TF disagree: conversion's rules vs checking with tf.io.decode_image", 34)
    figures = {}
    for title, fmt, images in workloads:
        rules = rules_ms(images, fmt)
        default = per_image_ms(images, lambda data: check_image(data, ImageTransform()))
        tf_ms = per_image_ms(images, lambda data: tf.io.decode_image(data, channels=3, expand_animations=False))
        figures[title] = {"rules_ms": rules, "default_check_ms": default, "tf_decode_ms": tf_ms}
        table.row(
            title,
            f"rules {rules:9.3f} ms",
            f"default check {default:9.3f} ms",
            f"tf.io.decode_image {tf_ms:9.3f} ms",
            f"ratio tf/rules {ratio(tf_ms, rules):8.1f}",
        )
    table.note(
        "ms per file; the default check includes the rules; TF would be added to it (the conversion install has none)"
    )
    table.print()
    return figures


def measure_orientation(size: tuple[int, int]) -> dict[str, float]:
    """A photo with orientation 6 against the same photo upright: the default check, size and fidelity."""
    from PIL import ImageOps

    plain = photos(1, size)[0]
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    Image.open(io.BytesIO(plain)).save(buffer, format="JPEG", quality=90, exif=exif.tobytes())
    turned = buffer.getvalue()
    upright = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(turned)))).astype(np.int16)
    check = ImageTransform()
    plain_ms = per_image_ms([plain], lambda data: check_image(data, check))
    turned_ms = per_image_ms([turned], lambda data: check_image(data, check))
    record = check_image(turned, check).encoded
    buffer = io.BytesIO()
    ImageOps.exif_transpose(Image.open(io.BytesIO(turned))).save(buffer, format="JPEG", quality=95)
    q95 = buffer.getvalue()
    table = Table(f"EXIF orientation: a {size[0]}x{size[1]} JPEG q90 turned upright (orientation 6)", 30)
    table.row("default check, orientation 1", f"{plain_ms:10.3f} ms/image", "bytes kept")
    table.row("default check, orientation 6", f"{turned_ms:10.3f} ms/image", f"ratio {ratio(turned_ms, plain_ms):6.2f}")
    figures = {"orientation_1_ms": plain_ms, "orientation_6_ms": turned_ms}
    for name, data in (("own tables (conversion)", record), ("quality 95", q95)):
        pixels = np.asarray(Image.open(io.BytesIO(data))).astype(np.int16)
        difference = np.abs(pixels - upright)
        table.row(
            name,
            f"size {len(data) / len(turned):5.2f}x the original",
            f"mean |difference| {difference.mean():5.2f}",
            f"max {int(difference.max()):3d}",
        )
        figures[f"{name} size ratio"] = len(data) / len(turned)
        figures[f"{name} mean difference"] = float(difference.mean())
    table.note("difference: Pillow's decode of the record against Pillow's upright decode of the original")
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
        workloads = [
            ("GIF 64x64", "gif", gifs(args.small_files, (64, 64), 1)),
            ("GIF 320x240, 20 frames", "gif", gifs(max(1, args.small_files // 20), (320, 240), 20)),
            (f"PNG {size[0] // 4}x{size[1] // 4}", "png", png_photos(args.photos, (size[0] // 4, size[1] // 4))),
            (f"JPEG {size[0]}x{size[1]} q90", "jpeg", photos(args.photos, size)),
        ]
        rules = measure_rules(workloads, tf)
        turned = measure_orientation(size)
        write_results(args, small_png_ms=small, photo_jpeg_ms=big, rules_ms=rules, orientation=turned)
    return 0


if __name__ == "__main__":
    sys.exit(main())
