"""SavedModel export: two serving signatures and the label map as an asset."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable

import tensorflow as tf

from training.input import KEY_FEATURE
from training.preprocess import images_from_encoded

EXAMPLES_INPUT = "examples"  # serialized tf.Example, signature "serving_default" (and "predict")
IMAGE_BYTES_INPUT = "image_bytes"  # encoded image bytes, signatures "image_bytes:*"
LABELS_ASSET = "labels.txt"
DATASET_ASSET = "dataset.json"  # kind, task, label and key column of the data the model was trained on


def serving_input_receiver_fn(params: dict) -> Callable[[], tf.estimator.export.ServingInputReceiver]:
    """Receives serialized Examples; the encoded-image tensor inside is a second signature's input."""
    size, channels = tuple(params["image_size"]), int(params["channels"])

    def receiver() -> tf.estimator.export.ServingInputReceiver:
        serialized = tf.compat.v1.placeholder(tf.string, [None], name=EXAMPLES_INPUT)
        parsed = tf.io.parse_example(
            serialized,
            {
                "image/encoded": tf.io.FixedLenFeature([], tf.string),
                "image/filename": tf.io.FixedLenFeature([], tf.string, default_value=""),
            },
        )
        encoded = tf.identity(parsed["image/encoded"], name=IMAGE_BYTES_INPUT)
        features = {"image": images_from_encoded(encoded, size, channels), KEY_FEATURE: parsed["image/filename"]}
        return tf.estimator.export.ServingInputReceiver(
            features,
            {EXAMPLES_INPUT: serialized},
            receiver_tensors_alternatives={IMAGE_BYTES_INPUT: {IMAGE_BYTES_INPUT: encoded}},
        )

    return receiver


COLUMNS_INPUT = "columns"  # tables: one input per raw column, signatures "columns:*"


def table_receiver_fn(manifest, feature_plan: dict) -> Callable[[], tf.estimator.export.ServingInputReceiver]:
    """Receives serialized Examples; the columns the model uses are a second signature's inputs, by name."""
    spec = manifest.tf_feature_spec()
    names = sorted(set(feature_plan["columns"]) | {c for cross in feature_plan["crosses"] for c in cross["columns"]})

    def receiver() -> tf.estimator.export.ServingInputReceiver:
        serialized = tf.compat.v1.placeholder(tf.string, [None], name=EXAMPLES_INPUT)
        parsed = tf.io.parse_example(serialized, {name: spec[name] for name in names})
        columns = {name: tf.identity(parsed[name], name=f"column_{i}") for i, name in enumerate(names)}
        features = dict(columns, **{KEY_FEATURE: tf.fill(tf.shape(serialized), "")})
        return tf.estimator.export.ServingInputReceiver(
            features, {EXAMPLES_INPUT: serialized}, receiver_tensors_alternatives={COLUMNS_INPUT: columns}
        )

    return receiver


def export_model(
    estimator: tf.estimator.Estimator, export_base: str, labels: list[str], receiver: Callable, dataset: dict
) -> str:
    """Export the latest checkpoint as a SavedModel with `assets.extra/labels.txt` and
    `assets.extra/dataset.json`; returns its path."""
    with tempfile.TemporaryDirectory() as tmp:
        labels_file, dataset_file = os.path.join(tmp, LABELS_ASSET), os.path.join(tmp, DATASET_ASSET)
        with open(labels_file, "w", encoding="utf-8") as out:
            out.write("".join(f"{label}\n" for label in labels))
        with open(dataset_file, "w", encoding="utf-8") as out:
            json.dump(dataset, out, sort_keys=True)
        extra = {LABELS_ASSET: labels_file, DATASET_ASSET: dataset_file}
        path = estimator.export_saved_model(export_base, receiver, assets_extra=extra)
    return path.decode("utf-8") if isinstance(path, bytes) else path


def load_dataset_info(export_dir: str) -> dict:
    """Kind, task, label and key column of the data the export was trained on."""
    with tf.io.gfile.GFile(f"{export_dir}/assets.extra/{DATASET_ASSET}") as handle:
        return json.load(handle)


def load_labels(export_dir: str) -> list[str]:
    """The label map shipped with an export (index = class id)."""
    with tf.io.gfile.GFile(f"{export_dir}/assets.extra/{LABELS_ASSET}") as handle:
        return [line.rstrip("\n") for line in handle]


def resolve_export(path: str) -> str:
    """`path` if it is a SavedModel, else the newest export under `path` or `path/export` (a model_dir).

    Raises:
        FileNotFoundError: no SavedModel is there.
    """
    for folder in (path, f"{path}/export"):
        if tf.io.gfile.exists(f"{folder}/saved_model.pb"):
            return folder
        exports = sorted(
            (
                p.rstrip("/")
                for p in tf.io.gfile.glob(f"{folder}/*")
                if os.path.basename(p.rstrip("/")).isdigit() and tf.io.gfile.exists(f"{p}/saved_model.pb")
            ),
            key=lambda p: int(os.path.basename(p)),
        )  # timestamps; temp-* folders are half-written
        if exports:
            return exports[-1]
    raise FileNotFoundError(f"no SavedModel at {path} (nor an export under it); pass model_dir/export/<timestamp>")
