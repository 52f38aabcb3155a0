"""One image as a serialized `tf.train.Example` with the features of `dataset.features`.

Executors encode one record per image file, and on small files the encoding is a fifth of a
task's time: the map entries whose values repeat (the label's, the format's, common heights and
widths) are encoded once and reused, the entries of bytes values (the image, its path, its hash) are a cached
prefix per value length followed by the value, and each record is one join of its parts in sorted key order (the
bytes `conversion.example_proto.example_from_features` gives; the image's bytes are copied once).
"""

from __future__ import annotations

import functools
import hashlib

from conversion.example_proto import _varint, bytes_feature, feature_entry, feature_key, int64_feature
from conversion.images.check import ImageRecord
from dataset import features as F
from dataset.features import IMAGE_FEATURES, IMAGE_ORIENTATION

_KEYS = {name: feature_key(name) for name in sorted([*IMAGE_FEATURES, IMAGE_ORIENTATION])}


def _entry(name: str, feature: bytes) -> bytes:
    return feature_entry(_KEYS[name], feature)


@functools.lru_cache(maxsize=4096)
def _int_entry(name: str, value: int) -> bytes:
    return _entry(name, int64_feature([value]))


@functools.lru_cache(maxsize=4096)
def _text_entry(name: str, value: str) -> bytes:
    return _entry(name, bytes_feature([value.encode("utf-8")]))


@functools.lru_cache(maxsize=4096)
def _head(channels: int, label_id: int, label: str) -> bytes:
    """The entries that sort before `image/encoded`: channels, label id and label text."""
    return (
        _int_entry(F.IMAGE_CHANNELS, channels)
        + _int_entry(F.IMAGE_LABEL_ID, label_id)
        + _text_entry(F.IMAGE_LABEL_TEXT, label)
    )


@functools.lru_cache(maxsize=65536)
def _bytes_prefix(name: str, length: int) -> bytes:
    """The map entry of a one-value `BytesList` feature, up to its value (which ends the entry) of `length` bytes."""
    entry = _entry(name, bytes_feature([bytes(length)]))
    return entry[: len(entry) - length]


def image_example(image: ImageRecord, label_id: int, label: str, relpath: str) -> bytes:
    """A serialized `tf.train.Example` for one image (keys in sorted order, as encoded); `image/orientation`
    only when the image carries one (`--keep-orientation`)."""
    encoded = image.encoded
    filename = relpath.encode("utf-8")
    sha256 = hashlib.sha256(encoded).hexdigest().encode("ascii")
    parts = (
        _head(image.channels, label_id, label),
        _bytes_prefix(F.IMAGE_ENCODED, len(encoded)),
        encoded,
        _bytes_prefix(F.IMAGE_FILENAME, len(filename)),
        filename,
        _text_entry(F.IMAGE_FORMAT, image.format),
        _int_entry(F.IMAGE_HEIGHT, image.height),
        _bytes_prefix(F.IMAGE_SHA256, len(sha256)),
        sha256,
        b"" if image.orientation is None else _int_entry(F.IMAGE_ORIENTATION, image.orientation),
        _int_entry(F.IMAGE_WIDTH, image.width),
    )
    return b"".join((b"\x0a", _varint(sum(map(len, parts))), *parts))  # Example.features (field 1)
