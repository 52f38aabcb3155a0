"""Feature keys and types shared by writers and readers.

Image records follow the TF image-model conventions (tensorflow/models tfrecord_lib):
every image feature is one fixed-length scalar. Table records have one feature per column.
"""

from __future__ import annotations

import posixpath

DTYPES = ("string", "int64", "float32")

IMAGE_ENCODED = "image/encoded"
IMAGE_FORMAT = "image/format"
IMAGE_HEIGHT = "image/height"
IMAGE_WIDTH = "image/width"
IMAGE_CHANNELS = "image/channels"
IMAGE_LABEL_ID = "image/class/label"
IMAGE_LABEL_TEXT = "image/class/text"
IMAGE_FILENAME = "image/filename"
IMAGE_SHA256 = "image/key/sha256"
IMAGE_ORIENTATION = "image/orientation"  # only with --keep-orientation: the EXIF orientation (1-8) of the pixels

# name → (tf dtype, Spark type of the record column)
IMAGE_FEATURES: dict[str, tuple[str, str]] = {
    IMAGE_ENCODED: ("string", "binary"),
    IMAGE_FORMAT: ("string", "string"),
    IMAGE_HEIGHT: ("int64", "bigint"),
    IMAGE_WIDTH: ("int64", "bigint"),
    IMAGE_CHANNELS: ("int64", "bigint"),
    IMAGE_LABEL_ID: ("int64", "bigint"),
    IMAGE_LABEL_TEXT: ("string", "string"),
    IMAGE_FILENAME: ("string", "string"),
    IMAGE_SHA256: ("string", "string"),
}

# The Spark type of a record column for each tf dtype (binary for raw bytes).
SPARK_TYPES = {"int64": "bigint", "float32": "float", "string": "string"}

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp"})


def is_hidden(relpath: str) -> bool:
    """A file that is hidden itself or lies in a hidden folder."""
    return any(part.startswith(".") for part in relpath.split("/"))


def has_image_extension(relpath: str) -> bool:
    return posixpath.splitext(relpath)[1].lower() in IMAGE_EXTENSIONS
