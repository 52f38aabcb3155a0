"""Reading a dataset back with `tf.data`: CRCs, parsing with the manifest's spec, counts."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from dataset.errors import DatasetError
from dataset.features import IMAGE_ENCODED
from dataset.layout import DatasetFolder, tf_compression
from dataset.manifest import Manifest, read_manifest, shard_urls

_OFFSET = re.compile(r"at (?:byte )?(\d+)")


@dataclass(frozen=True)
class ValidationReport:
    data: str
    num_shards: int
    num_records: int
    records_per_split: dict[str, int]

    def text(self) -> str:
        per_split = ", ".join(f"{name} {n}" for name, n in sorted(self.records_per_split.items()))
        return f"OK {self.data}: {self.num_records} records in {self.num_shards} shards ({per_split}); CRCs, parsing and counts agree"


def _tensorflow() -> Any:
    """The `tensorflow` module, or a one-line error in the conversion install, which has none."""
    try:
        import tensorflow as tf
    except ImportError:
        raise DatasetError(
            "reading shards with tf.data needs TensorFlow, which `pip install .` (conversion only) leaves out: "
            "pip install '.[train]' on Python 3.10 or 3.11"
        ) from None
    return tf


def _count_shard(manifest: Manifest, path: str, spec: dict[str, Any]) -> int:
    tf = _tensorflow()

    count = 0
    try:
        for batch in tf.data.TFRecordDataset(path, compression_type=tf_compression(manifest.compression)).batch(512):
            tf.io.parse_example(batch, spec)
            count += int(batch.shape[0])
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError, tf.errors.OutOfRangeError) as err:
        where = _OFFSET.search(err.message or "")
        at = f"byte offset {where.group(1)}" if where else f"record {count}"
        first_line = (err.message or type(err).__name__).splitlines()[0]
        raise DatasetError(f"corrupt shard {path} at {at} (after {count} good records): {first_line}") from None
    return count


def find_corrupt_shard(manifest: Manifest, paths: list[str]) -> str | None:
    """The error naming the first of `paths` (shard URLs of the dataset) that does not read back, if any."""
    spec = manifest.tf_feature_spec()
    for path in paths:
        try:
            _count_shard(manifest, path, spec)
        except DatasetError as err:
            return str(err)
    return None


def validate_dataset(data_url: str) -> ValidationReport:
    """Read every record of every shard, check CRCs and parsing, compare counts with the manifest.

    Raises:
        DatasetError: naming the first shard that is missing, corrupt or holds another count; or
            TensorFlow is not installed.
    """
    manifest = read_manifest(data_url)
    folder = DatasetFolder(data_url)
    fs = folder.fs
    _tensorflow()
    spec = manifest.tf_feature_spec()
    per_split, shards = {}, 0
    for split, info in sorted(manifest.splits.items()):
        total = 0
        for shard in info.files:
            path = folder.file_url(shard.path)
            if not fs.exists(folder.path(shard.path)):
                raise DatasetError(f"shard {path} listed in the manifest is missing")
            found = _count_shard(manifest, path, spec)
            if found != shard.num_records:
                raise DatasetError(f"shard {path} holds {found} records, the manifest says {shard.num_records}")
            total += found
            shards += 1
        per_split[split] = total
    return ValidationReport(data_url, shards, sum(per_split.values()), per_split)


def inspect_examples(data_url: str, split: str, count: int) -> Iterator[dict[str, Any]]:
    """Yield the first `count` examples of a split, decoded by the manifest's spec (bytes shortened)."""
    manifest = read_manifest(data_url)
    files = shard_urls(data_url, manifest, split)
    tf = _tensorflow()
    spec = manifest.tf_feature_spec()
    records = tf.data.TFRecordDataset(files, compression_type=tf_compression(manifest.compression))
    for serialized in records.take(count):
        parsed = tf.io.parse_single_example(serialized, spec)
        row = {}
        for name, value in sorted(parsed.items()):
            value = (tf.sparse.to_dense(value) if isinstance(value, tf.SparseTensor) else value).numpy()
            if isinstance(value, bytes):
                value = f"<{len(value)} bytes>" if name == IMAGE_ENCODED else value.decode("utf-8", "replace")
            elif hasattr(value, "tolist"):
                value = value.tolist()
            row[name] = value
        yield row
