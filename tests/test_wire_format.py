"""Our hand-written Example encoding and TFRecord framing, read back by TensorFlow itself."""

from __future__ import annotations

import hashlib
import io

import tensorflow as tf

from conversion.example_proto import encode_example
from dataset.tfrecord import TFRecordFileWriter


def test_encoded_example_parses_with_tensorflow_to_the_same_values():
    values = {
        "bytes": [b"", b"\x00\xff", "ünï".encode()],
        "ints": [0, 1, -1, 2**62, -(2**63), 127, 128, 300],
        "floats": [0.5, -2.25, 1e30],
        "scalar/text": "größe",
        "empty": [],
    }
    example = tf.train.Example.FromString(encode_example(values))
    feature = example.features.feature
    assert list(feature["bytes"].bytes_list.value) == [b"", b"\x00\xff", "ünï".encode()]
    assert list(feature["ints"].int64_list.value) == [0, 1, -1, 2**62, -(2**63), 127, 128, 300]
    assert list(feature["floats"].float_list.value)[:2] == [0.5, -2.25]
    assert feature["floats"].float_list.value[2] == tf.constant(1e30, tf.float32).numpy()
    assert list(feature["scalar/text"].bytes_list.value) == ["größe".encode()]
    assert feature["empty"].WhichOneof("kind") == "int64_list"
    assert list(feature["empty"].int64_list.value) == []


def test_encoding_matches_tensorflow_deterministic_serialization():
    values = {"b": [b"xyz"], "a": [7, 8], "c": [1.5]}
    reference = tf.train.Example(
        features=tf.train.Features(
            feature={
                "a": tf.train.Feature(int64_list=tf.train.Int64List(value=[7, 8])),
                "b": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"xyz"])),
                "c": tf.train.Feature(float_list=tf.train.FloatList(value=[1.5])),
            }
        )
    )
    assert encode_example(values) == reference.SerializeToString(deterministic=True)


def _write(records: list[bytes], compression: str) -> bytes:
    buffer = io.BytesIO()
    writer = TFRecordFileWriter(buffer, compression)
    buffer.close = lambda: None  # keep the bytes readable after the writer closes
    for record in records:
        writer.write(record)
    writer.close()
    return buffer.getvalue()


def test_framing_is_read_by_tf_data_plain_and_gzip(tmp_path):
    records = [b"", b"a", b"x" * 70000, bytes(range(256))]
    for compression, tf_name in (("none", ""), ("gzip", "GZIP")):
        path = tmp_path / f"r.{compression}"
        path.write_bytes(_write(records, compression))
        read = [r.numpy() for r in tf.data.TFRecordDataset(str(path), compression_type=tf_name)]
        assert read == records


def test_gzip_output_is_byte_identical_across_writes():
    first = _write([b"same", b"records"], "gzip")
    # The header carries no time and no name (two writes in the same second would be equal anyway):
    # magic, deflate, no flags, mtime 0, max compression, OS unknown.
    assert first[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    assert first == _write([b"same", b"records"], "gzip")


def test_an_image_record_equals_the_generic_encoding_and_tensorflow_reads_it():
    from conversion.images.check import ImageRecord
    from conversion.images.records import image_example

    for encoded, height, width, channels, fmt, label_id, label in (
        (b"\x89PNG fake", 64, 48, 3, "png", 2, "cat"),
        (b"x" * 300, 1, 70_000, 1, "jpeg", 0, "größe"),  # multi-byte lengths and varints, a non-ASCII label
    ):
        image = ImageRecord(encoded=encoded, format=fmt, height=height, width=width, channels=channels)
        record = image_example(image, label_id, label, f"{label}/a b.png")
        generic = encode_example(
            {
                "image/encoded": [encoded],
                "image/format": fmt,
                "image/height": height,
                "image/width": width,
                "image/channels": channels,
                "image/class/label": label_id,
                "image/class/text": label,
                "image/filename": f"{label}/a b.png",
                "image/key/sha256": hashlib.sha256(encoded).hexdigest(),
            }
        )
        assert record == generic
        feature = tf.train.Example.FromString(record).features.feature
        assert feature["image/width"].int64_list.value == [width]
        assert feature["image/class/text"].bytes_list.value == [label.encode()]
