"""Reading image shards back without TensorFlow: the TFRecord frames of a shard, the filename and label of each
record, and a copy of a shard without some records (an append's copy-on-write under `--on-change replace`).

Records are walked at the byte level: a frame's length, its checked CRCs, then the `tf.train.Example`'s map
entries, of which only the keys are compared; the image bytes are skipped, never decoded. A record that is kept
is copied frame for frame, so a rewritten shard holds the same record bytes as the shard it replaces.
"""

from __future__ import annotations

import gzip
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from dataset.errors import DatasetError
from dataset.features import IMAGE_FILENAME, IMAGE_LABEL_TEXT
from dataset.fs import filesystem
from dataset.layout import index_file_name
from dataset.record_index import render_index
from dataset.tfrecord import TFRecordFileWriter, frames

_FILENAME, _LABEL = IMAGE_FILENAME.encode(), IMAGE_LABEL_TEXT.encode()


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7


def _fields(data: bytes, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, int, int]]:
    """(field number, start, stop) of each length-delimited field of a message; other wire types skipped."""
    at, stop = start, len(data) if stop is None else stop
    while at < stop:
        tag, at = _varint(data, at)
        kind = tag & 7
        if kind == 2:
            length, at = _varint(data, at)
            yield tag >> 3, at, at + length
            at += length
        elif kind == 0:
            _, at = _varint(data, at)
        elif kind == 1:
            at += 8
        elif kind == 5:
            at += 4
        else:
            raise ValueError(f"wire type {kind} in a tf.train.Example")


def record_keys(record: bytes) -> tuple[str, str]:
    """The `image/filename` and `image/class/text` of a serialized image `tf.train.Example`.

    Raises:
        ValueError: the record holds neither, or is no Example.
    """
    found: dict[bytes, str] = {}
    for number, start, stop in _fields(record):  # Example.features
        if number != 1:
            continue
        for entry_number, entry_start, entry_stop in _fields(record, start, stop):  # Features.feature map entries
            if entry_number != 1:
                continue
            key, value = b"", None
            for part, part_start, part_stop in _fields(record, entry_start, entry_stop):
                if part == 1:
                    key = record[part_start:part_stop]
                elif part == 2:
                    value = (part_start, part_stop)
            if key in (_FILENAME, _LABEL) and value is not None:
                found[key] = _first_bytes(record, *value)
    if _FILENAME not in found:
        raise ValueError(f"a record without {IMAGE_FILENAME}")
    return found[_FILENAME], found.get(_LABEL, "")


def _first_bytes(record: bytes, start: int, stop: int) -> str:
    """The first value of a `Feature`'s `BytesList`, as text."""
    for number, list_start, list_stop in _fields(record, start, stop):
        if number == 1:  # bytes_list
            for _, value_start, value_stop in _fields(record, list_start, list_stop):
                return record[value_start:value_stop].decode("utf-8")
    return ""


def _open(url: str) -> BinaryIO:
    fs, path = filesystem(url)
    raw = fs.open(path, "rb")
    return gzip.GzipFile(fileobj=raw, mode="rb") if path.endswith(".gz") else raw  # type: ignore[return-value]


@dataclass(frozen=True)
class ShardKeys:
    """The records of one shard: (relpath, label text) of each, in order."""

    shard: str  # dataset-relative
    keys: tuple[tuple[str, str], ...]


def shard_keys(shard: str, url: str) -> ShardKeys:
    """Walk shard `url` (dataset-relative path `shard`) for its records' filenames and labels (runs on executors)."""
    with _open(url) as stream:
        keys = []
        for record in frames(stream, shard):
            try:
                keys.append(record_keys(record))
            except (ValueError, IndexError, UnicodeDecodeError) as err:
                raise DatasetError(f"{shard}: a record is not an image Example ({err}); is this an image dataset?")
        return ShardKeys(shard, tuple(keys))


@dataclass(frozen=True)
class Rewrite:
    """One shard to copy without some records: `drop` are relpaths; the copy goes to `target_url` (None: every
    record is dropped, no copy is written)."""

    shard: str  # dataset-relative path of the shard in the parent version
    source_url: str
    target: str | None  # dataset-relative path of the copy
    target_url: str | None
    compression: str
    drop: frozenset[str]


@dataclass(frozen=True)
class Rewritten:
    """What a copy holds: its records and bytes, and the labels and relpaths of the records it dropped."""

    shard: str
    target: str | None
    num_records: int
    num_bytes: int
    dropped_labels: dict[str, int] = field(default_factory=dict)
    dropped: tuple[str, ...] = ()
    index: str | None = None  # the copy's record index, dataset-relative (uncompressed copies)


def rewrite_shard(job: Rewrite) -> Rewritten:
    """Copy `job.source_url` to `job.target_url` without the records whose filename is in `job.drop` (runs on
    executors). The kept records' bytes are copied as they are; a gzip shard's copy is gzip (mtime 0)."""
    dropped: list[str] = []
    labels: Counter[str] = Counter()
    kept: list[bytes] = []
    with _open(job.source_url) as stream:
        for record in frames(stream, job.shard):
            relpath, label = record_keys(record)
            if relpath in job.drop:
                dropped.append(relpath)
                labels[label] += 1
            else:
                kept.append(record)
    if not kept or job.target_url is None:
        return Rewritten(job.shard, None, 0, 0, dict(labels), tuple(dropped))
    fs, path = filesystem(job.target_url)
    with TFRecordFileWriter(fs.open(path, "wb"), job.compression) as writer:
        for record in kept:
            writer.write(record)
    index = None
    if job.compression == "none":  # from the offsets just written
        index = index_file_name(job.target)
        fs.pipe_file(index_file_name(path), render_index(writer.spans))
    return Rewritten(job.shard, job.target, len(kept), fs.size(path), dict(labels), tuple(dropped), index)
