"""TFRecord framing without TensorFlow: length, masked CRC32C of the length, data, masked CRC32C of the data."""

from __future__ import annotations

import gzip
import struct
from typing import BinaryIO

import google_crc32c

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
