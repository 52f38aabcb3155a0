"""Batch prediction on Spark executors with an exported SavedModel, in Arrow batches."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession

from dataset import temporal
from dataset.decode import op_error_text
from dataset.errors import ConversionError, DatasetError, InferenceError
from dataset.export import (
    COLUMNS_INPUT,
    EXAMPLES_INPUT,
    IMAGE_BYTES_INPUT,
    column_input_name,
    load_labels,
    load_manifest,
)
from dataset.features import has_image_extension, is_hidden
from dataset.fs import filesystem, list_files
from dataset.layout import tf_compression
from dataset.manifest import Manifest, shard_urls
from dataset.object_store import is_s3_url, local_copies
from dataset.reads import read_files
from dataset.table_reading import CORRUPT, read_table
from dataset.versions import read_manifest

SCHEMA = (
    "key string, true_label string, predicted_label string, probabilities array<float>, prediction double, "
    "error string"  # why an input could not be predicted (predict --images), else null
)
BATCH = 256


@functools.lru_cache(maxsize=4)
def _signature(export_dir: str, name: str) -> Any:
    """One loaded signature per Python worker and export (loading costs seconds)."""
    import tensorflow as tf

    return tf.saved_model.load(_local_export(export_dir)).signatures[name]


@functools.lru_cache(maxsize=4)
def _local_export(export_dir: str) -> str:
    """A folder TensorFlow loads the export from: `export_dir`, or (on an object store, which TensorFlow reads not
    here) a copy made once per Python worker and removed when the worker exits."""
    if not is_s3_url(export_dir):
        return export_dir
    local = tempfile.mkdtemp(prefix="export-")
    atexit.register(shutil.rmtree, local, True)
    fs, path = filesystem(export_dir)
    fs.get(f"{path}/", local, recursive=True)
    return local


def _frame(keys: list, true: list, outputs: dict, labels: list[str]) -> pd.DataFrame:
    n = len(keys)
    if "predictions" in outputs:  # a regression head
        values = outputs["predictions"].numpy().reshape(-1).astype("float64")
        return pd.DataFrame(
            {
                "key": keys,
                "true_label": true,
                "predicted_label": [None] * n,
                "probabilities": [np.zeros(0, np.float32)] * n,
                "prediction": values,
                "error": [None] * n,
            }
        )
    ids = outputs["class_ids"].numpy().reshape(-1)
    probabilities = outputs["probabilities"].numpy().astype("float32")
    return pd.DataFrame(
        {
            "key": keys,
            "true_label": true,
            "predicted_label": [labels[i] for i in ids],
            "probabilities": list(probabilities),
            "prediction": [None] * n,
            "error": [None] * n,
        }
    )


def _failed(keys: list, true: list, errors: list[str]) -> pd.DataFrame:
    n = len(keys)
    return pd.DataFrame(
        {
            "key": keys,
            "true_label": true,
            "predicted_label": [None] * n,
            "probabilities": [np.zeros(0, np.float32)] * n,
            "prediction": [None] * n,
            "error": errors,
        }
    )


def check_labels(model_labels: list[str], data_labels: list[str], what: str, subset: bool = False) -> None:
    """Stop before predicting when the data's labels are not the model's (scores would be meaningless).

    `subset`: the data may hold only some of the model's labels (folders of raw images).

    Raises:
        InferenceError: they differ.
    """
    if not model_labels or not data_labels:
        return  # a regression model, or data without labels
    unknown = sorted(set(data_labels) - set(model_labels))
    missing = [] if subset else sorted(set(model_labels) - set(data_labels))
    if unknown or missing:
        parts = ([f"not in the model: {', '.join(unknown)}"] if unknown else []) + (
            [f"not in the data: {', '.join(missing)}"] if missing else []
        )
        raise InferenceError(
            f"the model's labels ({', '.join(model_labels)}) are not those of {what} ({', '.join(data_labels)}): "
            f"{'; '.join(parts)}; predict with a model trained on such data"
        )


def _text(values: Any) -> list:
    return [v.decode("utf-8") if isinstance(v, bytes) else (None if v is None else str(v)) for v in values]


def _predict_shards(
    export_dir: str,
    compression: str,
    key: str | None,
    label: str,
    spec: dict,
    labels: list[str],
    frames: Iterator[pd.DataFrame],
) -> Iterator[pd.DataFrame]:
    """mapInPandas body: every record of the listed shards through the export's `predict` signature."""
    import tensorflow as tf

    predict = _signature(export_dir, "predict")
    for frame in frames:
        for url in frame["path"]:
            with local_copies([url]) as (path,):  # on an object store, the shard is copied to local disk first
                for batch in tf.data.TFRecordDataset(path, compression_type=compression).batch(BATCH):
                    parsed = {k: v.numpy() for k, v in tf.io.parse_example(batch, spec).items()}
                    keys = _text(parsed[key]) if key else [""] * len(parsed[label])
                    yield _frame(keys, _text(parsed[label]), predict(**{EXAMPLES_INPUT: batch}), labels)


def predict_split(spark: SparkSession, export_dir: str, data: str, split: str, version: int | None = None) -> DataFrame:
    """Predictions for every record of a converted split (key: image/filename, or the table's key column)."""
    manifest = read_manifest(data, version)
    labels = load_labels(export_dir)
    check_labels(labels, list(manifest.labels), f"dataset {data}")
    paths = shard_urls(data, manifest, split)
    key, label = manifest.key_feature, manifest.label_feature
    spec = manifest.tf_feature_spec([name for name in (label, key) if name])
    compression = tf_compression(manifest.compression)
    frame = spark.createDataFrame(pd.DataFrame({"path": paths})).repartition(
        min(len(paths), spark.sparkContext.defaultParallelism)
    )
    run = functools.partial(_predict_shards, export_dir, compression, key, label, spec, labels)
    return frame.mapInPandas(run, SCHEMA)


def _predict_images(
    export_dir: str, root: str, labels: list[str], frames: Iterator[pd.DataFrame]
) -> Iterator[pd.DataFrame]:
    import tensorflow as tf

    predict = _signature(export_dir, f"{IMAGE_BYTES_INPUT}:predict")
    fs, base = filesystem(root)
    for frame in frames:
        for start in range(0, len(frame), BATCH):
            part = frame.iloc[start : start + BATCH]
            keys, true, data = [], [], []
            readable = []
            for relpath, label, problem in zip(part["relpath"], part["label"], part["problem"]):
                if problem is not None:
                    yield _failed([relpath], [label], [problem])
                else:
                    readable.append((relpath, label))
            contents = read_files(fs, [f"{base}/{relpath}" for relpath, _ in readable])  # overlapped, in order
            for (relpath, label), (_, content) in zip(readable, contents):
                if isinstance(content, OSError):
                    yield _failed([relpath], [label], [f"unreadable: {content.strerror or content}"])
                    continue
                keys.append(relpath)
                true.append(label)
                data.append(content)
            if not data:
                continue
            try:
                yield _frame(keys, true, predict(**{IMAGE_BYTES_INPUT: tf.constant(data)}), labels)
            except tf.errors.InvalidArgumentError:  # an image in the batch does not decode: find which, one by one
                for key, label, one in zip(keys, true, data):
                    try:
                        yield _frame([key], [label], predict(**{IMAGE_BYTES_INPUT: tf.constant([one])}), labels)
                    except tf.errors.InvalidArgumentError as err:
                        yield _failed([key], [label], [f"undecodable: {op_error_text(err)}"])


def predict_images(spark: SparkSession, export_dir: str, root: str) -> DataFrame:
    """Predictions for every image file under `root`; `true_label` is its first folder, if any.

    An image that cannot be read or decoded gets a row with its reason in `error` (and no
    prediction) instead of failing the job.

    Raises:
        DatasetError: there is no image file under `root`.
        InferenceError: a label folder names a label the model does not know.
    """
    files = [f for f in list_files(root) if has_image_extension(f.relpath) and not is_hidden(f.relpath)]
    if not files:
        raise DatasetError(f"no image files under {root}")
    rows = pd.DataFrame(
        {
            "relpath": [f.relpath for f in files],
            "label": [f.relpath.split("/")[0] if "/" in f.relpath else None for f in files],
            "problem": [f"{f.problem}: {f.detail}" if f.problem else None for f in files],  # FIFOs...: never read
        }
    )
    labels = load_labels(export_dir)
    folders = sorted({label for label in rows["label"] if label is not None})
    check_labels(labels, folders, f"the label folders of {root}", subset=True)
    frame = spark.createDataFrame(rows, "relpath string, label string, problem string").repartition(
        spark.sparkContext.defaultParallelism
    )
    run = functools.partial(_predict_images, export_dir, root, labels)
    return frame.mapInPandas(run, SCHEMA)


def _predict_rows(
    export_dir: str,
    key: str | None,
    label: str | None,
    labels: list[str],
    defaults: dict[str, Any],
    frames: Iterator[pd.DataFrame],
) -> Iterator[pd.DataFrame]:
    import tensorflow as tf

    predict = _signature(export_dir, f"{COLUMNS_INPUT}:predict")
    inputs = predict.structured_input_signature[1]
    for frame in frames:
        by_input = {column_input_name(c): c for c in frame.columns}  # the signature's input names
        for start in range(0, len(frame), BATCH):
            part = frame.iloc[start : start + BATCH]
            tensors = {}
            for name, spec in inputs.items():
                column = part[by_input[name]]
                if spec.dtype == tf.string:
                    missing = str(defaults.get(name, "")).encode()
                    tensors[name] = tf.constant(
                        [missing if v is None else (v if isinstance(v, bytes) else str(v).encode()) for v in column]
                    )
                else:  # a missing value is what training's parser supplies for it
                    tensors[name] = tf.constant(column.fillna(defaults.get(name, 0)).to_numpy(), dtype=spec.dtype)
            keys = _text(part[key]) if key else [""] * len(part)
            true = _text(part[label]) if label else [None] * len(part)
            yield _frame(keys, true, predict(**tensors), labels)


def predict_table_file(
    spark: SparkSession,
    export_dir: str,
    path: str,
    file_format: str = "csv",
    csv_null_value: str = "",
    read_options: tuple[tuple[str, str], ...] = (),
) -> DataFrame:
    """Predictions for the rows of a CSV/Parquet/JSON/ORC file with the training table's columns, read as the
    conversion reads its source (`dataset.table_reading`: the same reader options, CSV typed by the same rules)."""
    trained_on = load_manifest(export_dir)
    if trained_on.table is None:
        raise InferenceError(f"{export_dir} was trained on {trained_on.kind}; --table-file needs a table model")
    null_value = (("nullValue", csv_null_value),) if csv_null_value else ()
    try:
        source = read_table(spark, path, file_format, null_value + read_options)
    except ConversionError as err:
        raise DatasetError(str(err)) from None
    rows = source.frame.drop(CORRUPT) if CORRUPT in source.frame.columns else source.frame
    original = rows.columns
    rows = model_inputs(rows, trained_on)
    label = column_input_name(trained_on.table.label) if trained_on.table.label in original else None
    key = column_input_name(trained_on.table.key) if trained_on.table.key in original else None
    defaults = {column_input_name(n): f.default for n, f in trained_on.features.items() if f.default is not None}
    run = functools.partial(_predict_rows, export_dir, key, label, load_labels(export_dir), defaults)
    return rows.mapInPandas(run, SCHEMA)


def model_inputs(rows: DataFrame, trained_on: Manifest) -> DataFrame:
    """A table's rows as the model's inputs take them, each column named by its serving input: booleans
    as 0/1, and a column that was a date or timestamp in training as the same number
    (`dataset.temporal`; text is first read as that type, a timestamp without zone in the session's)."""
    from pyspark.sql import functions as F

    boolean = [f.name for f in rows.schema.fields if f.dataType.simpleString() == "boolean"]
    logical = {name: f.logical_type for name, f in trained_on.features.items() if f.logical_type}
    rows = rows.select(
        *[F.col(f"`{c}`").cast(logical[c]).alias(c) if c in logical else F.col(f"`{c}`") for c in rows.columns]
    )
    # Columns go by their serving input names (no dots: mapInPandas reads `a.b` as a struct field).
    named: dict[str, Any] = {}
    for c in rows.columns:
        value = (
            F.col(f"`{c}`").cast("int")
            if c in boolean
            else temporal.to_number(c, logical[c])
            if c in logical
            else F.col(f"`{c}`")
        )
        named.setdefault(column_input_name(c), value.alias(column_input_name(c)))
    return rows.select(*named.values())


def accuracy(predictions: DataFrame) -> float | None:
    """Share of rows whose predicted label is the true one (None when no row has a true label)."""
    row = (
        predictions.where("true_label IS NOT NULL AND predicted_label IS NOT NULL")
        .selectExpr("avg(CAST(predicted_label = true_label AS DOUBLE)) AS acc")
        .first()
    )
    return None if row is None or row["acc"] is None else float(row["acc"])
