"""Reading a dataset back with `tf.data`: CRCs, features and counts against the manifest, image decoding."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from dataset.errors import DatasetError
from dataset.features import IMAGE_ENCODED
from dataset.fs import list_files
from dataset.layout import (
    MANIFEST,
    REJECTED_DIR,
    REJECTED_REPORT,
    SUCCESS,
    VERSIONS_DIR,
    DatasetFolder,
    index_file_name,
    tf_compression,
)
from dataset.manifest import Manifest, shard_urls
from dataset.object_store import local_copies
from dataset.record_scan import ShardScan, feature_message, feature_problem, fixed_features, presence_spec, scan_shards
from dataset.tfds_metadata import is_tfds_file
from dataset.versions import all_versions, read_manifest

_OFFSET = re.compile(r"at (?:byte )?(\d+)")


@dataclass(frozen=True)
class ValidationReport:
    data: str
    num_shards: int
    num_records: int
    records_per_split: dict[str, int]
    num_decoded: int = 0  # image records decoded with the training decoder
    unlisted: tuple[str, ...] = ()  # files in the folder that the manifest does not list
    seconds: dict[str, float] = field(default_factory=dict, compare=False)  # time per phase (benchmarks/validate.py)

    def text(self) -> str:
        per_split = ", ".join(f"{name} {n}" for name, n in sorted(self.records_per_split.items()))
        decoded = f"; {self.num_decoded} images decode" if self.num_decoded else ""
        lines = [
            f"OK {self.data}: {self.num_records} records in {self.num_shards} shards ({per_split}); "
            f"CRCs, features, parsing and counts agree{decoded}"
        ]
        if self.unlisted:
            shown = ", ".join(self.unlisted[:10]) + (
                f" and {len(self.unlisted) - 10} more" if len(self.unlisted) > 10 else ""
            )
            lines.append(f"  note: {len(self.unlisted)} files are not in the manifest (readers ignore them): {shown}")
        return "\n".join(lines)


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


def _presence_spec(manifest: Manifest) -> dict[str, Any]:
    return presence_spec(_tensorflow(), manifest)


def _check_values(manifest: Manifest, path: str, parsed: dict[str, Any], first: int) -> None:
    """Fixed-length features must hold exactly their shape's number of values in every record (or
    none, where the manifest counts records that leave the feature out: a missing value)."""
    import numpy as np

    fixed = fixed_features(manifest)
    if not fixed:
        return
    rows = int(parsed[fixed[0][0]].dense_shape.numpy()[0])
    counts = np.stack([np.bincount(parsed[name].indices.numpy()[:, 0], minlength=rows) for name, _ in fixed], axis=1)
    for row in range(rows):
        problem = feature_problem(manifest, counts[row])
        if problem:
            raise DatasetError(feature_message(manifest, *problem, first + row, path))


def _count_shard(manifest: Manifest, path: str, spec: dict[str, Any] | None = None, name: str | None = None) -> int:
    """Records in the shard file `path` (named `name` in errors: its URL when `path` is a local copy)."""
    tf = _tensorflow()
    local, path = path, name or path

    spec = spec or _presence_spec(manifest)
    compression = tf_compression(manifest.compression)
    count = 0
    try:
        for batch in tf.data.TFRecordDataset(local, compression_type=compression).batch(512):
            _check_values(manifest, path, tf.io.parse_example(batch, spec), count)
            count += int(batch.shape[0])
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError, tf.errors.OutOfRangeError) as err:
        good = count + _good_records_from(local, compression, count, spec)
        where = _OFFSET.search(err.message or "")
        at = f"byte offset {where.group(1)}" if where else f"record {good}"
        first_line = (err.message or type(err).__name__).splitlines()[0]
        raise DatasetError(f"corrupt shard {path} at {at} (after {good} good records): {first_line}") from None
    return count


def _good_records_from(path: str, compression: str, start: int, spec: dict[str, Any]) -> int:
    """How many records after the first `start` read and parse, one by one, before the first that does not."""
    tf = _tensorflow()

    good = 0
    try:
        for serialized in tf.data.TFRecordDataset(path, compression_type=compression).skip(start):
            tf.io.parse_single_example(serialized, spec)
            good += 1
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError, tf.errors.OutOfRangeError):
        pass
    return good


def find_corrupt_shard(manifest: Manifest, paths: list[str]) -> str | None:
    """The error naming the first of `paths` (shard URLs of the dataset) that does not read back, if any."""
    spec = _presence_spec(manifest)
    for path in paths:
        try:
            _count_shard(manifest, path, spec)
        except DatasetError as err:
            return str(err)
    return None


def _check_manifest_features(manifest: Manifest) -> None:
    required = manifest.required_features()
    missing = sorted(set(required) - set(manifest.features))
    if missing:
        raise DatasetError(
            f"the manifest lacks features {missing} that {manifest.kind} records hold and training reads; "
            "restore manifest.json or convert the data again"
        )
    for name, dtype in required.items():
        if dtype is not None and manifest.features[name].dtype != dtype:
            raise DatasetError(
                f"the manifest says feature {name!r} is {manifest.features[name].dtype}, {manifest.kind} records hold {dtype}"
            )


def _unlisted_files(folder: DatasetFolder, found: set[str]) -> tuple[str, ...]:
    """Of `found` (the folder's files), those that no version lists and no conversion keeps (version manifests,
    file indexes, rejected reports)."""
    versions = all_versions(folder.url)
    listed = {f.path for version in versions for split in version.manifest.splits.values() for f in split.files}
    listed |= {index_file_name(path) for path in listed}  # an index belongs to its shard
    listed |= {version.manifest.file_index for version in versions if version.manifest.file_index}
    listed |= {MANIFEST, SUCCESS, REJECTED_REPORT}
    return tuple(sorted(p for p in found if p not in listed and not _kept(p)))


def _kept(path: str) -> bool:
    """A version manifest, a rejected report (of the current version or of a run), or TFDS metadata."""
    parts = path.split("/")
    return parts[0] == VERSIONS_DIR or REJECTED_DIR in parts[:-1] or is_tfds_file(parts[-1])


def _shard_scans(
    folder: DatasetFolder, manifest: Manifest, found: set[str], decode_sample: int | None
) -> list[ShardScan]:
    """Every shard of the manifest (splits sorted by name, shards in manifest order) with its index and how many of
    its images to decode: all, or about `decode_sample` per split spread over its shards (the first of each), 0 for
    none.

    Raises:
        DatasetError: a shard or index the manifest lists is not in the folder's listing `found`.
    """
    decode = manifest.kind == "images" and decode_sample != 0
    shards = []
    for split, info in sorted(manifest.splits.items()):
        per_shard = None if decode_sample is None else -(-decode_sample // max(1, len(info.files)))
        for shard in info.files:
            url = folder.file_url(shard.path)
            if shard.path not in found:
                raise DatasetError(f"shard {url} listed in the manifest is missing")
            index_url = folder.file_url(shard.index) if shard.index else None
            if shard.index and shard.index not in found:
                raise DatasetError(
                    f"index {index_url} listed in the manifest is missing; "
                    "write the dataset's indexes again (jobs/versions.py --write-indexes)"
                )
            limit = (shard.num_records if per_shard is None else min(shard.num_records, per_shard)) if decode else 0
            index_path = folder.path(shard.index) if shard.index else None
            shards.append(
                ShardScan(split, url, folder.path(shard.path), shard.num_records, index_url, index_path, limit)
            )
    return shards


def validate_dataset(data_url: str, decode_sample: int | None = None, version: int | None = None) -> ValidationReport:
    """Read every record of every shard: CRCs, every manifest feature present with its dtype and
    length, counts as in the manifest, each shard's record index; decode the images of image records
    with training's decoder (all of them, or about `decode_sample` per split, 0 for none); list files
    the manifest does not name.

    One listing of the folder (for the files the manifest does not name; it also finds missing shards without a
    request per shard) and one read of each shard and of its index: `dataset.record_scan`.

    Raises:
        DatasetError: naming the first shard or record that is missing, corrupt, lacks a feature,
            holds another count or whose image does not decode, or the index that does not match its shard.
    """
    seconds: dict[str, float] = {}
    start = time.perf_counter()

    def phase(name: str) -> None:
        nonlocal start
        now = time.perf_counter()
        seconds[name], start = now - start, now

    manifest = read_manifest(data_url, version)
    _check_manifest_features(manifest)
    _tensorflow()  # a one-line error without it, before anything is read
    folder = DatasetFolder(data_url)
    phase("manifest")
    found = set(list_files(data_url).relpaths.to_pylist())
    shards = _shard_scans(folder, manifest, found, decode_sample)
    phase("listing")
    scan_shards(folder.fs, manifest, shards)
    phase("shards")
    per_split: dict[str, int] = {}
    for shard in shards:
        per_split[shard.split] = per_split.get(shard.split, 0) + shard.num_records
    per_split.update({split: 0 for split in manifest.splits if split not in per_split})
    decoded = sum(shard.decode for shard in shards)
    unlisted = _unlisted_files(folder, found)
    phase("unlisted_note")
    return ValidationReport(data_url, len(shards), sum(per_split.values()), per_split, decoded, unlisted, seconds)


def inspect_examples(data_url: str, split: str, count: int, version: int | None = None) -> Iterator[dict[str, Any]]:
    """Yield the first `count` examples of a split, decoded by the manifest's spec (bytes shortened)."""
    manifest = read_manifest(data_url, version)
    for url in shard_urls(data_url, manifest, split):  # one shard at a time: on a store, each is copied first
        with local_copies([url]) as (path,):
            for row in _examples(manifest, path, count):
                yield row
                count -= 1
        if count <= 0:
            return


def _examples(manifest: Manifest, path: str, count: int) -> Iterator[dict[str, Any]]:
    tf = _tensorflow()
    spec = manifest.tf_feature_spec()
    records = tf.data.TFRecordDataset(path, compression_type=tf_compression(manifest.compression))
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
