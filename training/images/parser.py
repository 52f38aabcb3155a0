"""Image records → model inputs: parse the batch, decode and resize the images, label names as labels."""

from __future__ import annotations

import tensorflow as tf

from dataset.decode import BadRecord
from dataset.errors import DatasetError
from dataset.features import IMAGE_ENCODED, IMAGE_FILENAME, IMAGE_LABEL_ID, IMAGE_LABEL_TEXT
from dataset.manifest import Manifest
from training.images.augment import check_augment, eval_images, train_images
from training.input import KEY_FEATURE, Parser, RecordFilter


def image_parser(manifest: Manifest, params: dict, training: bool = False) -> Parser:
    """Batch of image Examples → ({"image", KEY_FEATURE}, label names); `training` augments (params["augment"])."""
    spec = manifest.tf_feature_spec([IMAGE_ENCODED, IMAGE_FILENAME, IMAGE_LABEL_TEXT])
    size, channels = tuple(params["image_size"]), int(params["channels"])
    augment = check_augment(params["augment"])

    def images(encoded: tf.Tensor) -> tf.Tensor:
        if not training:
            return eval_images(encoded, size, channels, augment)
        # One stateless seed per image, drawn from the graph's seeded generator.
        seeds = tf.random.uniform([tf.size(encoded), 2], maxval=2**31 - 1, dtype=tf.int64)
        return train_images(encoded, seeds, size, channels, augment)

    def parse(serialized: tf.Tensor) -> tuple[dict, tf.Tensor]:
        parsed = tf.io.parse_example(serialized, spec)  # vectorized over the batch
        features = {"image": images(parsed[IMAGE_ENCODED]), KEY_FEATURE: parsed[IMAGE_FILENAME]}
        return features, parsed[IMAGE_LABEL_TEXT]

    return parse


def label_filter(manifest: Manifest, keep_labels: tuple[str, ...]) -> RecordFilter:
    """Keeps the records of `keep_labels` (by label id, without decoding the image).

    Raises:
        DatasetError: a label is not in the dataset.
    """
    unknown = sorted(set(keep_labels) - set(manifest.labels))
    if unknown:
        raise DatasetError(f"labels {unknown} are not in the dataset; it has {', '.join(manifest.labels)}")
    wanted = [manifest.labels.index(label) for label in keep_labels]

    def keep_record(serialized: tf.Tensor) -> tf.Tensor:
        label = tf.io.parse_single_example(serialized, {IMAGE_LABEL_ID: tf.io.FixedLenFeature([], tf.int64)})
        return tf.reduce_any(tf.equal(label[IMAGE_LABEL_ID], tf.constant(wanted, tf.int64)))

    return keep_record


def skip_filter(manifest: Manifest, bad: tuple[BadRecord, ...]) -> RecordFilter:
    """Drops the records named in `bad` (by `image/filename`, unique in a dataset)."""
    names = sorted({record.filename for record in bad})

    def keep_record(serialized: tf.Tensor) -> tf.Tensor:
        name = tf.io.parse_single_example(serialized, {IMAGE_FILENAME: tf.io.FixedLenFeature([], tf.string)})
        skipped = tf.constant(names, tf.string)  # built in the input_fn's graph, not eagerly
        return tf.logical_not(tf.reduce_any(tf.equal(name[IMAGE_FILENAME], skipped)))

    return keep_record
