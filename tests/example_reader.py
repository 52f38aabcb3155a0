"""An independent TFRecord + `tf.train.Example` reader for tests: shares no code with the writers
and needs no TensorFlow, so the Spark 4 run (`make test-spark4`, no TensorFlow) reads shards with it.

`parsed_like_tf` gives what `tf.io.parse_single_example` with the manifest's spec gives, as numpy
(`.numpy()` of each tensor, sparse ones made dense), so a test compares either reader's rows alike.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import google_crc32c
import numpy as np

from dataset.versions import read_manifest


def _masked_crc(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def index_lines(data: bytes) -> str:
    """The `offset size` index of an uncompressed TFRecord file as `tfrecord2idx` (the `tfrecord` package's and
    DALI's) computes it: each frame's 8-byte length read, the rest skipped, `size` the whole frame."""
    lines, at = [], 0
    while at < len(data):
        (length,) = struct.unpack_from("<q", data, at)
        lines.append(f"{at} {length + 16}\n")
        at += length + 16
    return "".join(lines)


def tfrecords(data: bytes) -> list[bytes]:
    """The records of a TFRecord file, checking both CRCs of each and that nothing trails."""
    records, at = [], 0
    while at < len(data):
        header = data[at : at + 12]
        assert len(header) == 12, f"truncated header at byte {at}"
        (length,) = struct.unpack("<Q", header[:8])
        assert struct.unpack("<I", header[8:])[0] == _masked_crc(header[:8]), f"length CRC at byte {at}"
        body = data[at + 12 : at + 12 + length]
        (crc,) = struct.unpack("<I", data[at + 12 + length : at + 16 + length])
        assert len(body) == length and crc == _masked_crc(body), f"data CRC at byte {at}"
        records.append(body)
        at += 16 + length
    return records


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at, shift = at + 1, shift + 7
        if byte < 0x80:
            return value, at


def _fields(data: bytes) -> list[tuple[int, int, object]]:
    """(field number, wire type, value) of a protobuf message: ints for varint/fixed, bytes for LEN."""
    out, at = [], 0
    while at < len(data):
        key, at = _varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, at = _varint(data, at)
        elif wire == 2:
            length, at = _varint(data, at)
            value, at = data[at : at + length], at + length
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, at = data[at : at + size], at + size
        else:
            raise AssertionError(f"wire type {wire} in an Example")
        out.append((number, wire, value))
    return out


def _feature_values(feature: bytes) -> list:
    """Feature{bytes_list=1 | float_list=2 | int64_list=3}, packed or not."""
    [(kind, _, inner)] = _fields(feature)
    values = []
    for _, wire, value in _fields(inner):
        if kind == 1:
            values.append(value)
        elif kind == 3:
            if wire == 0:
                values.append(value - (1 << 64) if value >= 1 << 63 else value)
            else:
                at = 0
                while at < len(value):
                    item, at = _varint(value, at)
                    values.append(item - (1 << 64) if item >= 1 << 63 else item)
        else:  # float32: 4 bytes unpacked (wire 5) or any number packed (wire 2)
            values.extend(struct.unpack(f"<{len(value) // 4}f", value))
    return values


def parse_example(record: bytes) -> dict[str, list]:
    """Example{features=1: Features{feature=1: map<string, Feature>}} as name → values."""
    [(number, wire, features)] = _fields(record)
    assert (number, wire) == (1, 2), "an Example is one length-delimited field 1"
    parsed = {}
    for _, _, entry in _fields(features):
        parts = {number: value for number, _, value in _fields(entry)}
        parsed[parts[1].decode("utf-8")] = _feature_values(parts[2])
    return parsed


def file_records(path: Path) -> list[bytes]:
    """The records of one shard file (`.gz`: gzip), each CRC checked."""
    data = Path(path).read_bytes()
    return tfrecords(gzip.decompress(data) if str(path).endswith(".gz") else data)


_NUMPY = {"int64": np.int64, "float32": np.float32, "string": object}


def parsed_like_tf(out: Path, split: str) -> list[dict]:
    """Every record of `split` as TensorFlow parses it with the manifest's spec: {feature: numpy value}.

    A fixed feature missing from a record reads as the manifest's default where the manifest counts
    records without it (`null_count`), and fails elsewhere, as in TensorFlow (no default in the spec).
    """
    manifest = read_manifest(str(out))
    rows = []
    for shard in manifest.split(split).files:
        for record in file_records(Path(out) / shard.path):
            example = parse_example(record)
            row = {}
            for name, info in manifest.features.items():
                default = info.default.encode() if isinstance(info.default, str) else info.default  # TF: bytes
                missing = [default] if info.length == "fixed" and info.null_count else []
                values = np.array(example.get(name, missing), dtype=_NUMPY[info.dtype])
                if info.length == "fixed":
                    assert values.size == int(np.prod(info.shape)), f"feature {name!r}: {values.size} values"
                    values = values.reshape(info.shape)
                    row[name] = values[()] if info.shape == () else values
                else:
                    row[name] = values
            rows.append(row)
    return rows
