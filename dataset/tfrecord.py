"""TFRecord framing without TensorFlow: length, masked CRC32C of the length, data, masked CRC32C of the data."""

from __future__ import annotations

import gzip
import struct
from collections.abc import Iterator
from typing import BinaryIO

import google_crc32c

from dataset.errors import DatasetError
from dataset.layout import COMPRESSIONS

_MASK_DELTA = 0xA282EAD8


def masked_crc32c(data: bytes) -> int:
    """The CRC32C of `data`, masked as TFRecord stores it."""
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def frame(record: bytes) -> bytes:
    """One record framed as TFRecord bytes."""
    length = struct.pack("<Q", len(record))
    return length + struct.pack("<I", masked_crc32c(length)) + record + struct.pack("<I", masked_crc32c(record))


class TFRecordFileWriter:
    """Writes framed records to a binary stream, gzip-compressed when asked.

    The gzip header carries no name and mtime 0, so equal records give byte-identical files. `spans` holds each
    written frame's (offset, size) in the uncompressed stream: a shard's index (`dataset.record_index`) with no
    second read.
    """

    def __init__(self, raw: BinaryIO, compression: str = "none") -> None:
        if compression not in COMPRESSIONS:
            raise ValueError(f"unknown compression {compression!r}; use one of {', '.join(COMPRESSIONS)}")
        self._raw = raw
        self._stream: BinaryIO = (
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) if compression == "gzip" else raw
        )
        self.num_records = 0
        self.spans: list[tuple[int, int]] = []
        self._at = 0

    def write(self, record: bytes) -> None:
        framed = frame(record)
        self._stream.write(framed)
        self.spans.append((self._at, len(framed)))
        self._at += len(framed)
        self.num_records += 1

    def close(self) -> None:
        if self._stream is not self._raw:
            self._stream.close()
        self._raw.close()

    def __enter__(self) -> "TFRecordFileWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FrameError(DatasetError):
    """A shard's frames stop reading at byte `offset`, after `good` whole frames: truncated or corrupt, by `cause`."""

    def __init__(self, name: str, offset: int, good: int, truncated: bool, cause: str) -> None:
        where = f"truncated at byte {offset} ({cause})" if truncated else f"corrupt at byte {offset}: {cause}"
        super().__init__(f"shard {name} is {where}")
        self.offset = offset
        self.good = good
        self.cause = cause


_LENGTH = struct.Struct("<Q")
_CRC = struct.Struct("<I")


def frame_spans(data: bytes, name: str) -> list[tuple[int, int]]:
    """(offset, size) of each TFRecord frame in `data` (a whole uncompressed shard), `size` the whole framed
    record (8 + 4 + length + 4), checking each frame's length and data CRCs: a shard's index
    (`dataset.record_index`), and what copying frames byte for byte (a compaction) checks first.

    Raises:
        FrameError: a frame is truncated or a CRC does not match (naming `name` and the byte offset).
    """
    at, spans, end = 0, [], len(data)
    while at < end:
        if at + 12 > end:
            raise FrameError(name, at, len(spans), True, "a frame header is cut")
        length_bytes = data[at : at + 8]
        if _CRC.unpack_from(data, at + 8)[0] != masked_crc32c(length_bytes):
            raise FrameError(name, at, len(spans), False, "the length CRC does not match")
        (length,) = _LENGTH.unpack(length_bytes)
        body_end = at + 12 + length
        if body_end + 4 > end:
            raise FrameError(name, at, len(spans), True, f"a record of {length} bytes is cut")
        if _CRC.unpack_from(data, body_end)[0] != masked_crc32c(data[at + 12 : body_end]):
            raise FrameError(name, at, len(spans), False, "the record CRC does not match")
        spans.append((at, body_end + 4 - at))
        at = body_end + 4
    return spans


def count_frames(data: bytes, name: str) -> int:
    """The number of TFRecord frames in `data` (a whole uncompressed shard), each checked as `frame_spans` does."""
    return len(frame_spans(data, name))


def frames(stream: BinaryIO, where: str) -> Iterator[bytes]:
    """Each record of a TFRecord stream (uncompressed, or a gzip stream opened for reading), its length and data
    CRCs checked: the streaming twin of `frame_spans`, for shards read once without holding them whole.

    Raises:
        DatasetError: the stream is cut short or a CRC does not match.
    """
    while True:
        header = stream.read(12)
        if not header:
            return
        if len(header) < 12:
            raise DatasetError(f"{where} ends inside a record header: the shard is truncated")
        (length,), (crc,) = _LENGTH.unpack_from(header), _CRC.unpack_from(header, 8)
        if masked_crc32c(header[:8]) != crc:
            raise DatasetError(f"{where}: a record length fails its CRC: the shard is damaged")
        data = stream.read(length)
        tail = stream.read(4)
        if len(data) < length or len(tail) < 4:
            raise DatasetError(f"{where} ends inside a record: the shard is truncated")
        if masked_crc32c(data) != _CRC.unpack(tail)[0]:
            raise DatasetError(f"{where}: a record fails its CRC: the shard is damaged")
        yield data
