"""Batch prediction on Spark executors with an exported SavedModel, in Arrow batches."""

from __future__ import annotations

import functools
import posixpath
from collections.abc import Iterator
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame, SparkSession

from conversion.errors import DatasetError
from conversion.images import IMAGE_EXTENSIONS
from conversion.listing import filesystem, list_files
from conversion.manifest import read_manifest
from training.serving import EXAMPLES_INPUT, IMAGE_BYTES_INPUT, load_labels

SCHEMA = "key string, true_label string, predicted_label string, probabilities array<float>"
BATCH = 256


@functools.lru_cache(maxsize=2)
def _signature(export_dir: str, name: str) -> Any:
    """One loaded signature per Python worker and export (loading costs seconds)."""
    import tensorflow as tf

    return tf.saved_model.load(export_dir).signatures[name]


def _frame(keys: list[str], true: list[str | None], outputs: dict, labels: list[str]) -> pd.DataFrame:
    ids = outputs["class_ids"].numpy().reshape(-1)
    probabilities = outputs["probabilities"].numpy()
    if probabilities.shape[-1] == 1:  # a binary head gives P(label 1) only
        probabilities = probabilities.reshape(-1, 1)
        probabilities = pd.concat([pd.DataFrame(1 - probabilities), pd.DataFrame(probabilities)], axis=1).to_numpy()
    return pd.DataFrame(
        {
            "key": keys,
            "true_label": true,
            "predicted_label": [labels[i] for i in ids],
            "probabilities": [row.astype("float32") for row in probabilities],
        }
    )


def _predict_shards(
    export_dir: str, compression: str, labels: list[str], frames: Iterator[pd.DataFrame]
) -> Iterator[pd.DataFrame]:
    import tensorflow as tf

    predict = _signature(export_dir, "predict")
    spec = {
        "image/filename": tf.io.FixedLenFeature([], tf.string),
        "image/class/text": tf.io.FixedLenFeature([], tf.string, ""),
    }
    for frame in frames:
        for path in frame["path"]:
            for batch in tf.data.TFRecordDataset(path, compression_type=compression).batch(BATCH):
                parsed = tf.io.parse_example(batch, spec)
                keys = [k.decode("utf-8") for k in parsed["image/filename"].numpy()]
                true = [t.decode("utf-8") or None for t in parsed["image/class/text"].numpy()]
                yield _frame(keys, true, predict(**{EXAMPLES_INPUT: batch}), labels)


def _predict_images(
    export_dir: str, root: str, labels: list[str], frames: Iterator[pd.DataFrame]
) -> Iterator[pd.DataFrame]:
    import tensorflow as tf

    predict = _signature(export_dir, f"{IMAGE_BYTES_INPUT}:predict")
    fs, base = filesystem(root)
    for frame in frames:
        for start in range(0, len(frame), BATCH):
            part = frame.iloc[start : start + BATCH]
            data = [fs.cat_file(f"{base}/{relpath}") for relpath in part["relpath"]]
            outputs = predict(**{IMAGE_BYTES_INPUT: tf.constant(data)})
            yield _frame(list(part["relpath"]), list(part["label"]), outputs, labels)


def predict_split(spark: SparkSession, export_dir: str, data: str, split: str) -> DataFrame:
    """Predictions for every record of a converted split (key = image/filename)."""
    manifest = read_manifest(data)
    if split not in manifest.splits:
        raise DatasetError(f"split {split!r} is not in {data}; it has {', '.join(sorted(manifest.splits))}")
    fs, root = filesystem(data)
    paths = [fs.unstrip_protocol(f"{root}/{f.path}") for f in manifest.splits[split].files]
    compression = "GZIP" if manifest.compression == "gzip" else ""
    frame = spark.createDataFrame(pd.DataFrame({"path": paths})).repartition(
        min(len(paths), spark.sparkContext.defaultParallelism)
    )
    run = functools.partial(_predict_shards, export_dir, compression, load_labels(export_dir))
    return frame.mapInPandas(run, SCHEMA)


def predict_images(spark: SparkSession, export_dir: str, root: str) -> DataFrame:
    """Predictions for every image file under `root`; `true_label` is its first folder, if any."""
    files = [
        f
        for f in list_files(root)
        if posixpath.splitext(f.relpath)[1].lower() in IMAGE_EXTENSIONS
        and not any(part.startswith(".") for part in f.relpath.split("/"))
    ]
    if not files:
        raise DatasetError(f"no image files under {root}")
    rows = pd.DataFrame(
        {
            "relpath": [f.relpath for f in files],
            "label": [f.relpath.split("/")[0] if "/" in f.relpath else None for f in files],
        }
    )
    frame = spark.createDataFrame(rows, "relpath string, label string").repartition(
        spark.sparkContext.defaultParallelism
    )
    run = functools.partial(_predict_images, export_dir, root, load_labels(export_dir))
    return frame.mapInPandas(run, SCHEMA)


def accuracy(predictions: DataFrame) -> float | None:
    """Share of rows whose predicted label is the true one (None when no row has a true label)."""
    row = (
        predictions.where("true_label IS NOT NULL")
        .selectExpr("avg(CAST(predicted_label = true_label AS DOUBLE)) AS acc")
        .first()
    )
    return None if row is None or row["acc"] is None else float(row["acc"])
