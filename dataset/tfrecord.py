"""TFRecord framing without TensorFlow: length, masked CRC32C of the length, data, masked CRC32C of the data."""

from __future__ import annotations

import gzip
import struct
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

    The gzip header carries no name and mtime 0, so equal records give byte-identical files.
    """

    def __init__(self, raw: BinaryIO, compression: str = "none") -> None:
        if compression not in COMPRESSIONS:
            raise ValueError(f"unknown compression {compression!r}; use one of {', '.join(COMPRESSIONS)}")
        self._raw = raw
        self._stream: BinaryIO = (
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) if compression == "gzip" else raw
        )
        self.num_records = 0

    def write(self, record: bytes) -> None:
        self._stream.write(frame(record))
        self.num_records += 1

    def close(self) -> None:
        if self._stream is not self._raw:
            self._stream.close()
        self._raw.close()

    def __enter__(self) -> "TFRecordFileWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_LENGTH = struct.Struct("<Q")
_CRC = struct.Struct("<I")


def count_frames(data: bytes, name: str) -> int:
    """The number of TFRecord frames in `data` (a whole uncompressed shard), checking each frame's length and data
    CRCs: what copying frames byte for byte (a compaction) checks first.

    Raises:
        DatasetError: a frame is truncated or a CRC does not match (naming `name` and the byte offset).
    """
    at, count, end = 0, 0, len(data)
    while at < end:
        if at + 12 > end:
            raise DatasetError(f"shard {name} is truncated at byte {at} (a frame header is cut)")
        length_bytes = data[at : at + 8]
        if _CRC.unpack_from(data, at + 8)[0] != masked_crc32c(length_bytes):
            raise DatasetError(f"shard {name} is corrupt at byte {at}: the length CRC does not match")
        (length,) = _LENGTH.unpack(length_bytes)
        body_end = at + 12 + length
        if body_end + 4 > end:
            raise DatasetError(f"shard {name} is truncated at byte {at} (a record of {length} bytes is cut)")
        if _CRC.unpack_from(data, body_end)[0] != masked_crc32c(data[at + 12 : body_end]):
            raise DatasetError(f"shard {name} is corrupt at byte {at}: the record CRC does not match")
        at, count = body_end + 4, count + 1
    return count
