"""`make demo`: scikit-learn's digits as PNG label folders; convert, validate, train with Horovod,
evaluate, export, predict, and write an HTML report."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import SparkSession

from conversion.images.convert import convert_images
from conversion.images.options import ImageConvertOptions
from dataset.check import inspect_examples, validate_dataset
from dataset.versions import read_manifest
from demo.data import write_digits
from demo.report import write_report
from inference.predict import predict_split
from training.config import TrainConfig
from training.run import run_training


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


@dataclass(frozen=True)
class DemoResult:
    accuracy: float
    num_predictions: int
    export: str
    report: str


def run_demo(spark: SparkSession, workdir: Path, num_proc: int = 2, epochs: float = 25) -> DemoResult:
    """The whole pipeline on the digits under `workdir`; prints each step's summary."""
    images, dataset, model_dir = workdir / "digits", workdir / "dataset", workdir / "model"
    print(f"images:      {images} ({write_digits(images)} PNGs of 32x32 in 10 label folders)")
    options = ImageConvertOptions(str(images), str(dataset), num_shards=4, mode="overwrite")
    print(convert_images(spark, options).text())
    print(validate_dataset(str(dataset)).text())
    if model_dir.exists():
        shutil.rmtree(model_dir)  # a rerun trains from scratch
    config = TrainConfig(str(dataset), str(model_dir), epochs=epochs, eval_split="test")
    result = run_training(spark, config, num_proc)
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
    accuracy = float((predictions["true_label"] == predictions["predicted_label"]).mean())
    print(
        f"dataset:     {dataset}\nmodel:       {model_dir} (tensorboard --logdir {model_dir})\n"
        f"export:      {export}\npredictions: {out}\nreport:      {report}"
    )
    return DemoResult(accuracy, len(predictions), export, report)
