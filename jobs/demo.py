"""`make demo`: generate a labelled image tree; convert, validate, train with Horovod, predict.

python -m jobs.demo --workdir demo_output
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from conversion.convert import convert_images
from conversion.errors import ConversionError, DatasetError
from conversion.options import ImageConvertOptions
from conversion.validate import inspect_examples, validate_dataset
from jobs.spark_cli import add_spark_arguments, spark_session
from training.config import TrainConfig, TrainingError
from training.predict import accuracy, predict_split
from training.run import run_training

SHAPES = ("circle", "square", "triangle", "cross")


def draw(shape: str, rng: np.random.Generator, size: int = 32) -> Image.Image:
    """One image of `shape` at a random place and colour on a noisy background."""
    background = rng.integers(0, 80, size=(size, size, 3), dtype=np.uint8)
    image = Image.fromarray(background, "RGB")
    pen = ImageDraw.Draw(image)
    r = int(rng.integers(6, 12))
    cx, cy = (int(v) for v in rng.integers(r, size - r, size=2))
    color = tuple(int(v) for v in rng.integers(120, 256, size=3))
    if shape == "circle":
        pen.ellipse((cx - r, cy - r, cx + r, cy + r), fill=color)
    elif shape == "square":
        pen.rectangle((cx - r, cy - r, cx + r, cy + r), fill=color)
    elif shape == "triangle":
        pen.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=color)
    else:
        pen.rectangle((cx - r, cy - 2, cx + r, cy + 2), fill=color)
        pen.rectangle((cx - 2, cy - r, cx + 2, cy + r), fill=color)
    return image


def generate_tree(root: Path, per_label: int) -> None:
    """Write `root/<shape>/<n>.png` (deterministic; kept when already complete)."""
    rng = np.random.default_rng(0)
    for shape in SHAPES:
        folder = root / shape
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_label):
            image = draw(shape, rng)
            path = folder / f"{i:04d}.png"
            if not path.exists():
                image.save(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="demo", description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="demo_output", help="where the images and the dataset go")
    parser.add_argument("--per-label", type=int, default=250, help="images per label")
    parser.add_argument("--num-proc", type=int, default=2, help="Horovod processes")
    parser.add_argument("--epochs", type=float, default=8, help="passes over the training split")
    add_spark_arguments(parser)
    args = parser.parse_args(argv)
    workdir = Path(args.workdir).resolve()
    images, dataset, model_dir = workdir / "images", workdir / "dataset", workdir / "model"
    generate_tree(images, args.per_label)
    print(f"images:  {images} ({len(SHAPES)} labels x {args.per_label} PNGs)")
    try:
        spark = spark_session(args, "demo")
        options = ImageConvertOptions(str(images), str(dataset), num_shards=4, mode="overwrite")
        print(convert_images(spark, options).text())
        print(validate_dataset(str(dataset)).text())
        for row in inspect_examples(str(dataset), "train", 2):
            print(
                "  example:", {k: row[k] for k in ("image/filename", "image/class/text", "image/height", "image/width")}
            )
        if model_dir.exists():
            shutil.rmtree(model_dir)  # a rerun trains from scratch
        config = TrainConfig(str(dataset), str(model_dir), epochs=args.epochs, eval_split="test")
        result = run_training(spark, config, args.num_proc)
        print(result.text())
        predictions = predict_split(spark, result.metrics["export_path"], str(dataset), "test")
        out = workdir / "predictions"
        predictions.write.mode("overwrite").parquet(str(out))
        print(f"predictions: {out} (test accuracy with the export: {accuracy(spark.read.parquet(str(out))):.4f})")
    except (ConversionError, DatasetError, TrainingError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"dataset: {dataset}\nmodel:   {model_dir} (TensorBoard: tensorboard --logdir {model_dir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
