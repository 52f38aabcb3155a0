"""`make demo`: generate a labelled image tree; convert, validate, train with Horovod, predict.

python -m jobs.demo --workdir demo_output
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from conversion.convert import convert_images
from conversion.errors import ConversionError, DatasetError
from conversion.manifest import read_manifest
from conversion.options import ImageConvertOptions
from conversion.validate import inspect_examples, validate_dataset
from jobs.spark_cli import add_spark_arguments, spark_session
from training.config import TrainConfig, TrainingError
from training.predict import predict_split
from training.report import write_report
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


def write_digits(root: Path, size: int = 32) -> int:
    """scikit-learn's 1,797 handwritten digits (8x8, shipped with the package) as `root/<digit>/<n>.png`."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    for index, (pixels, target) in enumerate(zip(digits.images, digits.target)):
        path = root / str(target) / f"{index:04d}.png"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            image = Image.fromarray((pixels * (255.0 / 16.0)).astype(np.uint8), "L")
            image.resize((size, size), Image.BILINEAR).save(path)
    return len(digits.images)


def predict_a_few(export: str, dataset: Path, count: int = 8) -> list[tuple[str, str, str]]:
    """(file, true label, predicted label) for the first test records, predicted from raw image bytes."""
    import tensorflow as tf

    rows = list(inspect_examples(str(dataset), "test", count))
    images = Path(read_manifest(str(dataset)).source_root)
    data = [(images / row["image/filename"]).read_bytes() for row in rows]
    outputs = tf.saved_model.load(export).signatures["image_bytes:predict"](image_bytes=tf.constant(data))
    predicted = [c.decode() for c in outputs["classes"].numpy()[:, 0]]
    return [(row["image/filename"], row["image/class/text"], p) for row, p in zip(rows, predicted)]


def samples_per_label(images: Path, labels: tuple[str, ...], count: int = 8) -> dict[str, list[bytes]]:
    return {label: [p.read_bytes() for p in sorted((images / label).glob("*.png"))[:count]] for label in labels}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="demo", description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="demo_output", help="where the images, dataset, model and report go")
    parser.add_argument("--num-proc", type=int, default=2, help="Horovod processes")
    parser.add_argument("--epochs", type=float, default=25, help="passes over the training split")
    add_spark_arguments(parser)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    workdir = Path(args.workdir).resolve()
    images, dataset, model_dir = workdir / "digits", workdir / "dataset", workdir / "model"
    print(f"images:      {images} ({write_digits(images)} PNGs of 32x32 in 10 label folders)")
    try:
        spark = spark_session(args, "demo")
        options = ImageConvertOptions(str(images), str(dataset), num_shards=4, mode="overwrite")
        print(convert_images(spark, options).text())
        print(validate_dataset(str(dataset)).text())
        if model_dir.exists():
            shutil.rmtree(model_dir)  # a rerun trains from scratch
        config = TrainConfig(str(dataset), str(model_dir), epochs=args.epochs, eval_split="test")
        result = run_training(spark, config, args.num_proc)
        print(result.text())
        export = result.metrics["export_path"]
        for name, true, predicted in predict_a_few(export, dataset):
            print(f"  export predicts {name}: {predicted} (true {true})")
        out = workdir / "predictions"
        predict_split(spark, export, str(dataset), "test").write.mode("overwrite").parquet(str(out))
        predictions = spark.read.parquet(str(out)).toPandas()
        manifest = read_manifest(str(dataset))
        report = write_report(
            str(workdir / "report.html"),
            manifest,
            samples_per_label(images, manifest.labels),
            str(model_dir),
            "test",
            predictions,
            result.metrics,
        )
    except (ConversionError, DatasetError, TrainingError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    accuracy = float((predictions["true_label"] == predictions["predicted_label"]).mean())
    print(
        f"test accuracy {accuracy:.4f} on {len(predictions)} images (target 0.95) in {time.perf_counter() - start:.0f} s"
    )
    print(
        f"dataset:     {dataset}\nmodel:       {model_dir} (tensorboard --logdir {model_dir})\n"
        f"export:      {export}\npredictions: {out}\nreport:      {report}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
