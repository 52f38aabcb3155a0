"""The image export's serving input: serialized Examples, and encoded image bytes as a second signature."""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from dataset.export import EXAMPLES_INPUT, IMAGE_BYTES_INPUT
from dataset.features import IMAGE_ENCODED, IMAGE_FILENAME
from dataset.manifest import Manifest
from training.images.augment import eval_images
from training.input import KEY_FEATURE


def image_receiver_fn(manifest: Manifest, params: dict) -> Callable[[], tf.estimator.export.ServingInputReceiver]:
    """Receives serialized Examples; the encoded-image tensor inside is a second signature's input.

    Images are preprocessed as for evaluation (the centre crop with params["augment"] "imagenet").
    """
    size, channels, augment = tuple(params["image_size"]), int(params["channels"]), params["augment"]

    def receiver() -> tf.estimator.export.ServingInputReceiver:
        serialized = tf.compat.v1.placeholder(tf.string, [None], name=EXAMPLES_INPUT)
        parsed = tf.io.parse_example(
            serialized,
            {
                IMAGE_ENCODED: tf.io.FixedLenFeature([], tf.string),
                IMAGE_FILENAME: tf.io.FixedLenFeature([], tf.string, default_value=""),
            },
        )
        encoded = tf.identity(parsed[IMAGE_ENCODED], name=IMAGE_BYTES_INPUT)
        features = {"image": eval_images(encoded, size, channels, augment), KEY_FEATURE: parsed[IMAGE_FILENAME]}
        return tf.estimator.export.ServingInputReceiver(
            features,
            {EXAMPLES_INPUT: serialized},
            receiver_tensors_alternatives={IMAGE_BYTES_INPUT: {IMAGE_BYTES_INPUT: encoded}},
        )

    return receiver
