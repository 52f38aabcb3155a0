"""`tf.train.Example` wire encoding without importing TensorFlow.

Executors encode millions of small records; importing TensorFlow in every Python worker
costs seconds, so the few message types of example.proto/feature.proto are written here by
hand. Map entries are emitted in sorted key order, so equal inputs give equal bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Union

FeatureValue = Union[bytes, str, int, float, Sequence[bytes], Sequence[int], Sequence[float]]


_ONE_BYTE = [bytes((i,)) for i in range(0x80)]


def _varint(value: int) -> bytes:
    if 0 <= value < 0x80:
        return _ONE_BYTE[value]
    if value < 0:
        value += 1 << 64  # int64 is encoded as its 64-bit two's complement
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def delimited(tag: int, payload: bytes) -> bytes:
    return b"".join((_ONE_BYTE[tag], _varint(len(payload)), payload))


def bytes_feature(values: Sequence[bytes]) -> bytes:
    """Serialized `Feature` holding a `BytesList`."""
    inner = b"".join(delimited(0x0A, v) for v in values)
    return delimited(0x0A, inner)


def int64_feature(values: Sequence[int]) -> bytes:
    """Serialized `Feature` holding a packed `Int64List`."""
    packed = b"".join(_varint(int(v)) for v in values)
    inner = delimited(0x0A, packed) if values else b""
    return delimited(0x1A, inner)


def float_feature(values: Sequence[float]) -> bytes:
    """Serialized `Feature` holding a packed `FloatList` (float32)."""
    packed = struct.pack(f"<{len(values)}f", *values)
    inner = delimited(0x0A, packed) if values else b""
    return delimited(0x12, inner)


def encode_feature(value: FeatureValue) -> bytes:
    """Serialize one Python value (scalar or list) as a `Feature` by its Python type."""
    values = value if isinstance(value, (list, tuple)) else [value]
    if all(isinstance(v, (bytes, bytearray, memoryview, str)) for v in values) and values:
        return bytes_feature([v.encode("utf-8") if isinstance(v, str) else bytes(v) for v in values])
    if all(isinstance(v, (bool, int)) for v in values):
        return int64_feature([int(v) for v in values])
    if all(isinstance(v, (bool, int, float)) for v in values):
        return float_feature([float(v) for v in values])
    raise TypeError(f"cannot encode {type(value).__name__} values {value!r:.80} as a tf.train.Feature")


def feature_key(name: str) -> bytes:
    """The serialized key field of a feature map entry (precompute it for fixed layouts)."""
    return delimited(0x0A, name.encode("utf-8"))


def feature_entry(key: bytes, feature: bytes) -> bytes:
    """One serialized entry of `Features.feature`: a `feature_key` and a serialized `Feature`."""
    return delimited(0x0A, key + delimited(0x12, feature))


def example_from_features(features: Mapping[str, bytes]) -> bytes:
    """Serialize a `tf.train.Example` from already serialized `Feature`s (keys in sorted order)."""
    return delimited(0x0A, b"".join(feature_entry(feature_key(name), features[name]) for name in sorted(features)))


def encode_example(values: Mapping[str, FeatureValue]) -> bytes:
    """Serialize a `tf.train.Example` from a name → Python value mapping."""
    return example_from_features({name: encode_feature(value) for name, value in values.items()})
