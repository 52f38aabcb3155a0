"""One image as a serialized `tf.train.Example` with the features of `dataset.features`."""

from __future__ import annotations

import hashlib

from conversion.example_proto import bytes_feature, example_from_features, feature_key, int64_feature
from conversion.images.check import ImageRecord
from dataset import features as F
from dataset.features import IMAGE_FEATURES

_KEYS = {name: feature_key(name) for name in IMAGE_FEATURES}


def image_example(image: ImageRecord, label_id: int, label: str, relpath: str) -> bytes:
    """A serialized `tf.train.Example` for one image (keys in sorted order, as encoded)."""
    entries = {
        F.IMAGE_CHANNELS: int64_feature([image.channels]),
        F.IMAGE_LABEL_ID: int64_feature([label_id]),
        F.IMAGE_LABEL_TEXT: bytes_feature([label.encode("utf-8")]),
        F.IMAGE_ENCODED: bytes_feature([image.encoded]),
        F.IMAGE_FILENAME: bytes_feature([relpath.encode("utf-8")]),
        F.IMAGE_FORMAT: bytes_feature([image.format.encode("ascii")]),
        F.IMAGE_HEIGHT: int64_feature([image.height]),
        F.IMAGE_SHA256: bytes_feature([hashlib.sha256(image.encoded).hexdigest().encode("ascii")]),
        F.IMAGE_WIDTH: int64_feature([image.width]),
    }
    return example_from_features(entries, _KEYS)
