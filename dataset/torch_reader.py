"""A split's records for PyTorch-side readers: one DataLoader worker's share, read by the `tfrecord` package (PyPI)
through the shards' `.idx` indexes (`dataset.record_index`). Nothing here imports torch: a
`torch.utils.data.IterableDataset` calls `worker_records` or `worker_examples` with its worker's id and count
(DOCS_readers.md shows the DataLoader).

Worker `i` of `n` reads records [N*i//n, N*(i+1)//n) of every shard of N records (the package's `shard=(i, n)`),
so the workers together read each record exactly once, each shard in file order. A shard of fewer than 2 records is
read without its index: the package reads an index with `np.loadtxt(...)[:, 0]`, which fails on a 1-line or empty
file (vahidk/tfrecord#9).

Do not import the `tfrecord` package in a process that imported TensorFlow (or the other way round): both register
`tensorflow.Example` in protobuf's default pool and the second import fails ("duplicate symbol"). DataLoader workers
of a PyTorch program have no TensorFlow; tests run this side in a subprocess.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from dataset.errors import DatasetError
from dataset.fs import is_local
from dataset.layout import DatasetFolder
from dataset.manifest import Feature, Manifest
from dataset.versions import public_url, read_manifest

_NUMPY = {"string": object, "int64": np.int64, "float32": np.float32}
_LIST = {"string": "bytes_list", "int64": "int64_list", "float32": "float_list"}


@dataclass(frozen=True)
class WorkerShard:
    """What one worker reads of one shard: records [start, end), through `index` (None: the whole shard)."""

    path: str  # local path of the shard
    index: str | None
    start: int
    end: int


def worker_shards(
    data_url: str, manifest: Manifest, split: str, worker: int = 0, num_workers: int = 1
) -> list[WorkerShard]:
    """Worker `worker` of `num_workers`'s share of each shard of `split` that gives it records, in manifest order.

    Raises:
        ValueError: `worker` is not in 0..num_workers-1.
        DatasetError: no such split, the dataset is not on local disk (the package opens local files), its shards
            are gzip, or a shard of 2 records or more has no index.
    """
    if not 0 <= worker < num_workers:
        raise ValueError(f"worker {worker} of {num_workers}: a worker is 0..{num_workers - 1}")
    folder = DatasetFolder(data_url)
    if not is_local(folder.fs):
        raise DatasetError(
            f"{public_url(data_url)} is not on local disk: the tfrecord package reads local files; copy the "
            "dataset (or the shards of the split) to local disk, or read single records with dataset.random_access"
        )
    if manifest.compression != "none":
        raise DatasetError(
            f"{public_url(data_url)} holds {manifest.compression} shards: they have no index to split them "
            "across workers; convert again with --compression none"
        )
    shards = []
    for f in manifest.split(split).files:
        start, end = f.num_records * worker // num_workers, f.num_records * (worker + 1) // num_workers
        if start == end:
            continue
        if f.num_records >= 2 and f.index is None:
            raise DatasetError(
                f"shard {folder.file_url(f.path)} has no record index; index the dataset with "
                f"python jobs/versions.py --data {public_url(data_url)} --write-indexes"
            )
        index = folder.path(f.index) if f.num_records >= 2 else None
        shards.append(WorkerShard(folder.path(f.path), index, start, end))
    return shards


def worker_records(
    data_url: str, split: str, worker: int = 0, num_workers: int = 1, version: int | None = None
) -> Iterator[bytes]:
    """The serialized `tf.train.Example`s worker `worker` of `num_workers` reads of `split` (of `version`, default
    the current one), shard by shard in manifest order, through the `tfrecord` package.

    Raises:
        DatasetError: as `worker_shards`; or a shard gave another number of records than its index and the
            manifest say (named; validate the dataset).
    """
    yield from _records(data_url, read_manifest(data_url, version), split, worker, num_workers)


def _records(data_url: str, manifest: Manifest, split: str, worker: int, num_workers: int) -> Iterator[bytes]:
    """`worker_records` of a manifest already read."""
    from tfrecord.reader import tfrecord_iterator

    for shard in worker_shards(data_url, manifest, split, worker, num_workers):
        if shard.index is None:
            records = tfrecord_iterator(shard.path)
        else:
            records = tfrecord_iterator(shard.path, shard.index, shard=(worker, num_workers))
        count = 0
        for record in records:
            count += 1
            yield bytes(record)  # the package reuses its buffer for the next record
        if count != shard.end - shard.start:
            raise DatasetError(
                f"shard {shard.path} gave worker {worker} of {num_workers} {count} records, its index and the "
                f"manifest say {shard.end - shard.start}; check it with python jobs/validate.py"
            )


def worker_examples(
    data_url: str,
    split: str,
    worker: int = 0,
    num_workers: int = 1,
    keys: tuple[str, ...] | None = None,
    version: int | None = None,
) -> Iterator[dict[str, Any]]:
    """`worker_records` parsed as `tf.io.parse_single_example` with the manifest's spec parses them, as numpy:
    a scalar is a numpy scalar (bytes for strings), a fixed list an array of its shape, a var-length list a 1-D
    array; a value left out of a record is the manifest's `default` (an empty array for a list). `keys`: the
    features to return (default all).

    Raises:
        DatasetError: as `worker_records`; a key the manifest does not list; a record without a feature that every
            record holds, or with another number of values than its shape (named).
    """
    manifest = read_manifest(data_url, version)  # one read: the features and the shards of one version
    unknown = sorted(set(keys or ()) - set(manifest.features))
    if unknown:
        names = ", ".join(sorted(manifest.features))
        raise DatasetError(f"{public_url(data_url)} has no feature {', '.join(map(repr, unknown))}; it has {names}")
    wanted = {name: manifest.features[name] for name in (keys or sorted(manifest.features))}
    from tfrecord import example_pb2  # after the checks: a process with TensorFlow gets their error, not a clash

    for number, record in enumerate(_records(data_url, manifest, split, worker, num_workers)):
        features = example_pb2.Example.FromString(record).features.feature
        yield {
            name: _value(features, name, feature, f"record {number} of worker {worker}")
            for name, feature in wanted.items()
        }


def _value(features: Any, name: str, feature: Feature, where: str) -> Any:
    """One feature of a parsed Example, as tf.io parses it with the manifest's spec."""
    if name in features:
        values = getattr(features[name], _LIST[feature.dtype]).value
        array = np.array(list(values), dtype=_NUMPY[feature.dtype])
    elif feature.length != "fixed":
        return np.array([], dtype=_NUMPY[feature.dtype])
    elif feature.null_count:
        default = feature.default.encode() if isinstance(feature.default, str) else feature.default  # TF: bytes
        array = np.array([default], dtype=_NUMPY[feature.dtype])
    else:
        raise DatasetError(f"{where} has no feature {name!r}, which every record holds; validate the dataset")
    if feature.length != "fixed":
        return array
    if array.size != int(np.prod(feature.shape)):
        raise DatasetError(f"{where}: feature {name!r} holds {array.size} values, not {feature.shape}")
    return array.reshape(feature.shape)[()] if feature.shape == () else array.reshape(feature.shape)
