"""A shard's record index: the `.idx` file the `tfrecord` package (PyPI) and NVIDIA DALI read to split and seek.

One line `offset size` per record, in order: the record's byte offset in the shard and the size of the whole
framed record (8 length + 4 CRC + data + 4 CRC), what both tools' `tfrecord2idx` write. Only uncompressed
shards get one: neither reader can seek in a gzip stream, so a gzip shard has no index (`index` None in the
manifest) and indexing a gzip dataset is refused.
"""

from __future__ import annotations

from dataset.errors import DatasetError
from dataset.fs import filesystem
from dataset.tfrecord import frame_spans

Spans = list[tuple[int, int]]


def render_index(spans: Spans) -> bytes:
    """The `.idx` text of a shard's frames."""
    return "".join(f"{offset} {size}\n" for offset, size in spans).encode("ascii")


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


def write_index(shard_url: str, index_url: str) -> int:
    """Read shard `shard_url` once and write its index to `index_url`; the number of records (runs on executors)."""
    fs, path = filesystem(shard_url)
    spans = frame_spans(fs.cat_file(path), shard_url)
    index_fs, index_path = filesystem(index_url)
    index_fs.pipe_file(index_path, render_index(spans))
    return len(spans)


def check_index(shard: bytes, index: bytes, index_name: str, shard_name: str) -> None:
    """Check that `index` is the index of `shard` (both whole files' bytes).

    Raises:
        DatasetError: one line naming the index and its first wrong line, or the shard's frame error.
    """
    want = frame_spans(shard, shard_name)
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
