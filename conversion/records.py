"""The image record layout (TF image-model conventions) as one feature table.

The table is the contract with training: the manifest lists it, and training builds its
`tf.io` parse spec from the manifest alone.
"""

from __future__ import annotations

import hashlib

from conversion.example_proto import (
    bytes_feature,
    example_from_features,
    feature_key,
    int64_feature,
)
from conversion.images import ImageRecord

# name → (tf dtype, Spark type). Every image feature is one fixed-length scalar.
IMAGE_FEATURES: dict[str, tuple[str, str]] = {
    "image/encoded": ("string", "binary"),
    "image/format": ("string", "string"),
    "image/height": ("int64", "bigint"),
    "image/width": ("int64", "bigint"),
    "image/channels": ("int64", "bigint"),
    "image/class/label": ("int64", "bigint"),
    "image/class/text": ("string", "string"),
    "image/filename": ("string", "string"),
    "image/key/sha256": ("string", "string"),
}
_KEYS = {name: feature_key(name) for name in IMAGE_FEATURES}


def image_example(image: ImageRecord, label_id: int, label: str, relpath: str) -> bytes:
    """A serialized `tf.train.Example` for one image (keys in sorted order, as encoded)."""
    entries = {
        "image/channels": int64_feature([image.channels]),
        "image/class/label": int64_feature([label_id]),
        "image/class/text": bytes_feature([label.encode("utf-8")]),
        "image/encoded": bytes_feature([image.encoded]),
        "image/filename": bytes_feature([relpath.encode("utf-8")]),
        "image/format": bytes_feature([image.format.encode("ascii")]),
        "image/height": int64_feature([image.height]),
        "image/key/sha256": bytes_feature([hashlib.sha256(image.encoded).hexdigest().encode("ascii")]),
        "image/width": int64_feature([image.width]),
    }
    return example_from_features(entries, _KEYS)
