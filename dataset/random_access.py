"""Record k of a split, read through the shards' record indexes (`dataset.record_index`): the manifest's counts
say which shard holds it, the shard's `.idx` where it starts, and one ranged read of the shard fetches it."""

from __future__ import annotations

import bisect
import itertools
import struct

from dataset.errors import DatasetError
from dataset.layout import DatasetFolder
from dataset.record_index import parse_index
from dataset.tfrecord import masked_crc32c
from dataset.versions import public_url, read_manifest


def read_record(data_url: str, split: str, index: int, version: int | None = None) -> bytes:
    """The serialized `tf.train.Example` of record `index` (0-based, manifest order) of `split`: one read of the
    shard's index and one ranged read of the shard, its CRCs checked.

    Raises:
        DatasetError: no such split or record, the shard has no index (gzip, or written before indexes), or
            the index or the shard does not hold a whole record there.
    """
    manifest = read_manifest(data_url, version)
    files = manifest.split(split).files
    ends = list(itertools.accumulate(f.num_records for f in files))
    if not 0 <= index < (ends[-1] if ends else 0):
        raise DatasetError(
            f"split {split!r} of {public_url(data_url)} has {ends[-1] if ends else 0} records, not {index + 1}"
        )
    at = bisect.bisect_right(ends, index)
    shard, local = files[at], index - (ends[at - 1] if at else 0)
    folder = DatasetFolder(data_url)
    if shard.index is None:
        raise DatasetError(
            f"shard {folder.file_url(shard.path)} has no record index (gzip shards have none); index the dataset "
            f"with python jobs/versions.py --data {public_url(data_url)} --write-indexes, or convert it uncompressed"
        )
    spans = parse_index(folder.fs.cat_file(folder.path(shard.index)), folder.file_url(shard.index))
    if len(spans) != shard.num_records:
        raise DatasetError(
            f"index {folder.file_url(shard.index)} lists {len(spans)} records, the manifest says {shard.num_records}"
        )
    offset, size = spans[local]
    data = folder.fs.cat_file(folder.path(shard.path), start=offset, end=offset + size)
    return _record(data, size, f"{folder.file_url(shard.path)} at byte {offset}")


def _record(frame: bytes, size: int, where: str) -> bytes:
    """The data of one whole TFRecord frame, its length and CRCs checked."""
    if len(frame) != size or size < 16:
        raise DatasetError(f"shard {where} holds no whole record of {size} bytes; validate the dataset")
    (length,), (length_crc,) = struct.unpack_from("<Q", frame), struct.unpack_from("<I", frame, 8)
    data = frame[12:-4]
    if (
        length != len(data)
        or length_crc != masked_crc32c(frame[:8])
        or struct.unpack("<I", frame[-4:])[0] != masked_crc32c(data)
    ):
        raise DatasetError(f"shard {where} holds no whole record of {size} bytes there; validate the dataset")
    return data
