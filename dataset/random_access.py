"""Record k of a split, read through the shards' record indexes (`dataset.record_index`): the manifest's counts
say which shard holds it, the shard's `.idx` where it starts, and one ranged read of the shard fetches it.

A shard's parsed index is kept per process (`IndexCache`, least recently used out first): a shard never changes
once written, so after the first read of a shard each record costs one ranged read. `read_records` fetches many
records at once, one ranged read each, issued concurrently (fsspec `cat_ranges`; s3fs keeps up to its connection
pool in flight).
"""

from __future__ import annotations

import bisect
import itertools
import struct
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from dataset.errors import DatasetError, StorageError
from dataset.layout import DatasetFolder
from dataset.manifest import Manifest, ShardFile
from dataset.record_index import Spans, parse_index
from dataset.tfrecord import masked_crc32c
from dataset.versions import public_url, read_version

INDEX_CACHE_SHARDS = 1024  # parsed indexes kept per process (~15 bytes of text and 2 ints a record)


class IndexCache:
    """Parsed `.idx` files by URL, the `capacity` most recently used kept (thread-safe)."""

    def __init__(self, capacity: int = INDEX_CACHE_SHARDS) -> None:
        self.capacity = capacity
        self._spans: OrderedDict[tuple[str, int, int], Spans] = OrderedDict()
        self._lock = threading.Lock()
        self.reads = 0  # index files read (misses)

    def spans(self, folder: DatasetFolder, shard: ShardFile) -> Spans:
        """The (offset, size) of each record of `shard`, read once per process.

        The key holds the manifest's record and byte counts too: a shard rewritten in place (a legacy folder
        converted again) gets its index read again.

        Raises:
            DatasetError: the shard has no index, or its index does not list the manifest's records.
        """
        if shard.index is None:
            raise DatasetError(
                f"shard {folder.file_url(shard.path)} has no record index (gzip shards have none); index the "
                f"dataset with python jobs/versions.py --data {public_url(folder.url)} --write-indexes, or convert "
                "it uncompressed"
            )
        url = folder.file_url(shard.index)
        key = (url, shard.num_records, shard.bytes)
        with self._lock:
            if key in self._spans:
                self._spans.move_to_end(key)
                return self._spans[key]
        spans = parse_index(_cat(folder, shard.index), url)
        if len(spans) != shard.num_records:
            raise DatasetError(f"index {url} lists {len(spans)} records, the manifest says {shard.num_records}")
        with self._lock:
            self.reads += 1
            self._spans[key] = spans
            while len(self._spans) > self.capacity:
                self._spans.popitem(last=False)
        return spans

    def clear(self) -> None:
        with self._lock:
            self._spans.clear()

    def __getstate__(self) -> dict:
        return {"capacity": self.capacity}  # a copy in another process starts empty (and a lock is not picklable)

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["capacity"])


INDEXES = IndexCache()  # this process's


@dataclass(frozen=True)
class RecordSpan:
    """Where record `index` of a split lies: in shard `shard` (dataset-relative path), `size` bytes at `offset`."""

    index: int
    shard: str
    offset: int
    size: int


def record_spans(
    folder: DatasetFolder, manifest: Manifest, split: str, indexes: Sequence[int], cache: IndexCache = INDEXES
) -> list[RecordSpan]:
    """Where each of records `indexes` (0-based, manifest order) of `split` lies, through the cached indexes.

    Raises:
        DatasetError: no such split or record, or a shard without a usable index.
    """
    files = manifest.split(split).files
    ends = list(itertools.accumulate(f.num_records for f in files))
    total = ends[-1] if ends else 0
    out = []
    for index in indexes:
        if not 0 <= index < total:
            raise DatasetError(f"split {split!r} of {public_url(folder.url)} has {total} records, not {index + 1}")
        at = bisect.bisect_right(ends, index)
        shard = files[at]
        offset, size = cache.spans(folder, shard)[index - (ends[at - 1] if at else 0)]
        out.append(RecordSpan(index, shard.path, offset, size))
    return out


class SplitReader:
    """The records of one split of one version by index, for a map-style dataset (`reader[k]`, `len(reader)`): the
    manifest is read once here (the version pinned), so each record then costs one ranged read, a shard's first
    record its index too. Picklable: a DataLoader worker's copy starts with an empty index cache of its own.
    """

    def __init__(self, data_url: str, split: str, version: int | None = None, cache: IndexCache | None = None):
        read = read_version(data_url, version)
        self.folder = DatasetFolder(data_url)
        self.split = split
        self.version = read.number
        self.manifest = read.manifest
        self.cache = cache if cache is not None else INDEXES
        self._len = self.manifest.split(split).num_records  # no such split: DatasetError here

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, index: int) -> bytes:
        return self.read([index])[0]

    def read(self, indexes: Sequence[int]) -> list[bytes]:
        """Records `indexes` (in the order asked, repeats allowed): one ranged read each, all issued at once
        (`cat_ranges`).

        Raises:
            DatasetError: no such record, a shard without a usable index, a shard gone (a vacuumed version), or
                no whole record where the index says (for the first record that fails).
        """
        spans = record_spans(self.folder, self.manifest, self.split, indexes, self.cache)
        if not spans:
            return []
        folder = self.folder
        paths = [folder.path(span.shard) for span in spans]
        starts, ends = [s.offset for s in spans], [s.offset + s.size for s in spans]
        frames = folder.fs.cat_ranges(paths, starts, ends, on_error="return")
        records = []
        for span, frame in zip(spans, frames):
            where = f"{folder.file_url(span.shard)} at byte {span.offset}"
            if isinstance(frame, FileNotFoundError):
                raise DatasetError(
                    f"shard {folder.file_url(span.shard)} of version {self.version} is gone (vacuumed?); "
                    "read the current version"
                ) from frame
            if isinstance(frame, Exception):
                raise StorageError(f"cannot read {where}: {frame}") from frame
            records.append(_record(frame, span.size, where))
        return records


def read_record(data_url: str, split: str, index: int, version: int | None = None) -> bytes:
    """The serialized `tf.train.Example` of record `index` (0-based, manifest order) of `split`: the manifest, then
    one ranged read of the shard (and a read of the shard's index the first time this process reads that shard),
    its CRCs checked. Many records: `read_records`, or a `SplitReader` (the manifest read once).

    Raises:
        DatasetError: no such split or record, the shard has no index (gzip, or written before indexes), the
            shard is gone (a vacuumed version), or the index or the shard does not hold a whole record there.
    """
    return SplitReader(data_url, split, version).read([index])[0]


def read_records(
    data_url: str, split: str, indexes: Sequence[int], version: int | None = None, cache: IndexCache | None = None
) -> list[bytes]:
    """The serialized records `indexes` of `split` (in the order asked, repeats allowed): the manifest read once,
    each shard's index once per process (`cache`, default this process's), then one ranged read per record, all
    issued at once (`cat_ranges`).

    Raises:
        DatasetError: as `read_record`, for the first record that fails.
    """
    return SplitReader(data_url, split, version, cache).read(indexes)


def _cat(folder: DatasetFolder, relpath: str) -> bytes:
    try:
        return folder.fs.cat_file(folder.path(relpath))
    except FileNotFoundError as err:
        raise DatasetError(f"{folder.file_url(relpath)} is missing; validate the dataset") from err


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
