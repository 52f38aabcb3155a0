"""Small image preprocessing steps over tensors; each works eagerly and inside `Dataset.map`."""

from __future__ import annotations

import tensorflow as tf

from dataset.decode import decode_image


def decode(encoded: tf.Tensor, channels: int) -> tf.Tensor:
    """Encoded JPEG/PNG/GIF/BMP bytes (a scalar string) → uint8 [H, W, channels] (the project's one decoder)."""
    return decode_image(encoded, channels)


def resize(image: tf.Tensor, size: tuple[int, int]) -> tf.Tensor:
    """Bilinear resize to [height, width] (float32)."""
    return tf.image.resize(image, size, method="bilinear")


def normalize(image: tf.Tensor) -> tf.Tensor:
    """Pixel values scaled to [0, 1] (float32)."""
    return tf.cast(image, tf.float32) / 255.0
