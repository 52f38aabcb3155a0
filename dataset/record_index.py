"""A shard's record index: the `.idx` file the `tfrecord` package (PyPI) and NVIDIA DALI read to split and seek.

One line `offset size` per record, in order: the record's byte offset in the shard and the size of the whole
framed record (8 length + 4 CRC + data + 4 CRC), what both tools' `tfrecord2idx` write. Only uncompressed
shards get one: neither reader can seek in a gzip stream, so a gzip shard has no index (`index` None in the
manifest) and indexing a gzip dataset is refused.
"""

from __future__ import annotations

import mmap
import struct
from array import array
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from itertools import chain

import numpy as np

from dataset.errors import DatasetError
from dataset.fs import filesystem, is_local
from dataset.layout import DatasetFolder, index_file_name
from dataset.publishing import commit
from dataset.tfrecord import FrameError, frame_spans
from dataset.versions import Version, public_url, read_version

Spans = list[tuple[int, int]]
_LENGTH = struct.Struct("<Q")
_FRAMING = 16  # 8 length + 4 length CRC + 4 data CRC


def render_index(spans: Spans) -> bytes:
    """The `.idx` text of a shard's frames."""
    return _index_text(list(chain.from_iterable(spans)))


def _index_text(numbers: list[int]) -> bytes:
    """The `.idx` text of a flat list offset, size, offset, size, ... (one `%` for the whole shard)."""
    return (("%d %d\n" * (len(numbers) // 2)) % tuple(numbers)).encode("ascii")


def parse_index(text: bytes, name: str) -> Spans:
    """The (offset, size) lines of an `.idx` file.

    Raises:
        DatasetError: a line is not two whole numbers (naming `name` and the line).
    """
    spans = []
    for number, line in enumerate(text.decode("ascii", errors="replace").splitlines(), 1):
        parts = line.split()
        if len(parts) != 2 or not all(part.isdigit() for part in parts):
            raise DatasetError(f"index {name} line {number} is not `offset size`: {line[:60]!r}")
        spans.append((int(parts[0]), int(parts[1])))
    return spans


def shard_index(data: bytes, name: str) -> bytes:
    """The `.idx` text of an uncompressed shard's bytes (its frames walked and checked)."""
    return render_index(frame_spans(data, name))


def frame_lengths(data: bytes | mmap.mmap, name: str) -> tuple[int, bytes]:
    """The number of frames and the `.idx` text of `data` from the length fields alone, no CRC computed: for a shard
    this very job has just written (`conversion.tables.shards.write_indexes`), whose frames spark-tfrecord framed and
    whose record count the caller compares with the rows written to it. A walk that does not end exactly at the
    file's end fails. Only the offsets are kept on the walk (sizes are their differences): a 200,000-record shard's
    walk and text 0.13 s before, 0.09 s after (0.10-0.11 s where its pages are mapped for the first time).

    Raises:
        FrameError: a frame's header or data runs past the end of `data` (naming `name` and the byte offset).
    """
    offsets = array("q")
    keep, unpack, at, end = offsets.append, _LENGTH.unpack_from, 0, len(data)
    while at + 12 <= end:
        keep(at)
        at += unpack(data, at)[0] + _FRAMING
    if at != end:
        cut = at > end
        where = offsets.pop() if cut else at
        raise FrameError(name, where, len(offsets), True, "a record is cut" if cut else "a frame header is cut")
    starts = np.frombuffer(offsets, dtype=np.int64)
    lines = np.empty((len(starts), 2), dtype=np.int64)
    lines[:, 0] = starts
    lines[:, 1] = np.diff(starts, append=at)
    return len(starts), _index_text(lines.ravel().tolist())


def write_index(shard_url: str, index_url: str, check_crcs: bool = True) -> int:
    """Read shard `shard_url` once and write its index to `index_url`; the number of records (runs on executors).
    Without `check_crcs`, the frames are walked by their lengths alone (`frame_lengths`). A local shard is mapped into
    memory rather than copied whole into it (a 2,000,000-row table job's index stage 1.7-2.0 s before, 1.1-1.2 s
    after)."""
    fs, path = filesystem(shard_url)
    walk = _checked_index if check_crcs else frame_lengths
    mapped = _mapped(path) if is_local(fs) else None
    if mapped is None:
        records, text = walk(fs.cat_file(path), shard_url)
    else:
        with mapped:
            records, text = walk(mapped, shard_url)
    index_fs, index_path = filesystem(index_url)
    index_fs.pipe_file(index_path, text)
    return records


def _checked_index(data: bytes | mmap.mmap, name: str) -> tuple[int, bytes]:
    """The number of frames and the `.idx` text of `data`, every frame's CRCs checked (`frame_spans`)."""
    spans = frame_spans(data, name)
    return len(spans), render_index(spans)


def _mapped(path: str) -> mmap.mmap | None:
    """A local file mapped read-only, or None where it cannot be (empty; a mount that refuses mmap)."""
    try:
        with open(path, "rb") as shard:
            return mmap.mmap(shard.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):  # ValueError: an empty file
        return None


def check_index(shard: bytes, index: bytes, index_name: str, shard_name: str) -> None:
    """Check that `index` is the index of `shard` (both whole files' bytes).

    Raises:
        DatasetError: one line naming the index and its first wrong line, or the shard's frame error.
    """
    check_index_spans(frame_spans(shard, shard_name), index, index_name)


def check_index_spans(want: Spans, index: bytes, index_name: str) -> None:
    """Check that `index` lists the frames `want` (a walk of its shard, `frame_spans`): `check_index` without the walk.

    Raises:
        DatasetError: one line naming the index and its first wrong line.
    """
    have = parse_index(index, index_name)
    for number, (expected, found) in enumerate(zip(want, have), 1):
        if expected != found:
            raise DatasetError(
                f"index {index_name} line {number} says {found[0]} {found[1]}, the shard's record {number} is at "
                f"{expected[0]} {expected[1]}; write the dataset's indexes again (jobs/versions.py --write-indexes)"
            )
    if len(want) != len(have):
        raise DatasetError(
            f"index {index_name} lists {len(have)} records, its shard holds {len(want)}; "
            "write the dataset's indexes again (jobs/versions.py --write-indexes)"
        )


def index_version(data_url: str, threads: int = 8) -> tuple[Version | None, int]:
    """Write `<shard>.idx` beside every shard of the current version that has none named, one read per shard, and
    commit a version (operation "index") whose manifest names them; shards are not rewritten. The new version
    and the number of indexes written (None, 0: every shard already has one).

    Indexes go beside their shards (in the run folders that hold them) rather than into a run folder of their
    own: the readers look for `<shard>.idx` next to the shard, a shard never changes once written, so its index
    holds for every version that lists it (vacuum keeps and drops it with its shard).

    Raises:
        DatasetError: the dataset's shards are gzip (neither the `tfrecord` package nor DALI seeks in gzip), or a
            shard is damaged (named).
        CommitConflict: another writer committed meanwhile (the indexes stay, correct for their shards).
    """
    parent = read_version(data_url)
    manifest = parent.manifest
    if manifest.compression != "none":
        raise DatasetError(
            f"{public_url(data_url)} holds {manifest.compression} shards, which get no index: the `tfrecord` "
            "package and DALI cannot seek in compressed shards; convert again with --compression none"
        )
    folder = DatasetFolder(data_url)
    todo = sorted({f.path for split in manifest.splits.values() for f in split.files if not f.index})
    if not todo:
        return None, 0

    def one(path: str) -> tuple[str, int]:
        return path, write_index(folder.file_url(path), folder.file_url(index_file_name(path)))

    with ThreadPoolExecutor(threads, thread_name_prefix="index") as pool:
        counts = dict(pool.map(one, todo))
    splits = {}
    for name, split in manifest.splits.items():
        files = []
        for f in split.files:
            if f.path in counts and counts[f.path] != f.num_records:
                raise DatasetError(
                    f"shard {folder.file_url(f.path)} holds {counts[f.path]} records, the manifest says "
                    f"{f.num_records}; nothing was committed (python jobs/validate.py checks the dataset)"
                )
            files.append(replace(f, index=index_file_name(f.path)) if f.path in counts else f)
        splits[name] = replace(split, files=tuple(files))
    # the current version's report stays the root one: its run folder is the one `publish_current` copies from
    version = commit(data_url, replace(manifest, splits=splits), "index", parent, None, report_from=parent.info.run)
    return version, len(counts)
