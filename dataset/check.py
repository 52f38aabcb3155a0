"""Reading a dataset back with `tf.data`: CRCs, features and counts against the manifest, image decoding."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from dataset.errors import DatasetError
from dataset.features import IMAGE_ENCODED
from dataset.fs import filesystem
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
from dataset.object_store import local_copies, local_dataset
from dataset.record_index import check_index
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
    """Every manifest feature as a VarLenFeature of its dtype: a missing feature parses as no value
    (a FixedLenFeature would fail without naming it), another dtype fails to parse."""
    tf = _tensorflow()

    dtypes = {"string": tf.string, "int64": tf.int64, "float32": tf.float32}
    return {name: tf.io.VarLenFeature(dtypes[info.dtype]) for name, info in manifest.features.items()}


def _check_values(manifest: Manifest, path: str, parsed: dict[str, Any], first: int) -> None:
    """Fixed-length features must hold exactly their shape's number of values in every record (or
    none, where the manifest counts records that leave the feature out: a missing value)."""
    import numpy as np

    for name, info in sorted(manifest.features.items()):
        if info.length != "fixed":
            continue
        want = int(np.prod(info.shape)) if info.shape else 1
        rows = parsed[name].indices.numpy()[:, 0]
        counts = np.bincount(rows, minlength=int(parsed[name].dense_shape.numpy()[0]))
        wrong = np.nonzero((counts != want) & ((counts != 0) | (info.null_count == 0)))[0]
        if wrong.size:
            at, got = first + int(wrong[0]), int(counts[wrong[0]])
            what = "lacks feature" if got == 0 else f"has {got} values (the manifest says {want}) for feature"
            raise DatasetError(
                f"record {at} of shard {path} {what} {name!r} ({info.dtype}) that the manifest lists; "
                "the manifest does not describe these records: convert the data again"
            )


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


def _unlisted_files(folder: DatasetFolder) -> tuple[str, ...]:
    """Files that no version lists and no conversion keeps (version manifests, file indexes, rejected reports)."""
    versions = all_versions(folder.url)
    listed = {f.path for version in versions for split in version.manifest.splits.values() for f in split.files}
    listed |= {index_file_name(path) for path in listed}  # an index belongs to its shard
    listed |= {version.manifest.file_index for version in versions if version.manifest.file_index}
    listed |= {MANIFEST, SUCCESS, REJECTED_REPORT}
    root = folder.root.rstrip("/")
    found = [path[len(root) + 1 :] for path in folder.fs.find(root)]
    return tuple(sorted(p for p in found if p not in listed and not _kept(p)))


def _check_record_index(folder: DatasetFolder, index: str, copy: str, shard_url: str) -> None:
    """The shard's record index must exist and list its frames (a local copy of the shard at URL `copy`).

    Raises:
        DatasetError: one line naming the index that is missing or wrong.
    """
    index_url = folder.file_url(index)
    if not folder.fs.exists(folder.path(index)):
        raise DatasetError(
            f"index {index_url} listed in the manifest is missing; "
            "write the dataset's indexes again (jobs/versions.py --write-indexes)"
        )
    fs, path = filesystem(copy)
    check_index(fs.cat_file(path), folder.fs.cat_file(folder.path(index)), index_url, shard_url)


def _kept(path: str) -> bool:
    """A version manifest, a rejected report (of the current version or of a run), or TFDS metadata."""
    parts = path.split("/")
    return parts[0] == VERSIONS_DIR or REJECTED_DIR in parts[:-1] or is_tfds_file(parts[-1])


def validate_dataset(data_url: str, decode_sample: int | None = None, version: int | None = None) -> ValidationReport:
    """Read every record of every shard: CRCs, every manifest feature present with its dtype and
    length, counts as in the manifest; decode the images of image records with training's decoder
    (all of them, or `decode_sample` per split, 0 for none); list files the manifest does not name.

    Raises:
        DatasetError: naming the first shard or record that is missing, corrupt, lacks a feature,
            holds another count or whose image does not decode.
    """
    from dataset.decode import scan_undecodable

    manifest = read_manifest(data_url, version)
    _check_manifest_features(manifest)
    folder = DatasetFolder(data_url)
    fs = folder.fs
    spec = _presence_spec(manifest)
    per_split, shards, decoded = {}, 0, 0
    for split, info in sorted(manifest.splits.items()):
        total = 0
        urls = [folder.file_url(shard.path) for shard in info.files]
        for shard, path in zip(info.files, urls):
            if not fs.exists(folder.path(shard.path)):
                raise DatasetError(f"shard {path} listed in the manifest is missing")
        # TensorFlow reads no s3:// here: a split at a time on local disk, each shard at its path in the dataset
        with local_dataset(data_url, [shard.path for shard in info.files]) as readable:
            local = [DatasetFolder(readable).file_url(shard.path) for shard in info.files]
            for shard, path, copy in zip(info.files, urls, local):
                found = _count_shard(manifest, copy, spec, path)
                if found != shard.num_records:
                    raise DatasetError(f"shard {path} holds {found} records, the manifest says {shard.num_records}")
                if shard.index:
                    _check_record_index(folder, shard.index, copy, path)
                total += found
                shards += 1
            per_split[split] = total
            bad = []
            if manifest.kind == "images" and decode_sample != 0:
                bad = scan_undecodable(readable, manifest, split, first_only=True, sample=decode_sample)
                by_copy = dict(zip(local, urls))  # records name the shard's URL, not a copy
                bad = [dataclasses.replace(b, shard=by_copy.get(b.shard, b.shard)) for b in bad]
        if manifest.kind == "images" and decode_sample != 0:
            if bad:
                raise DatasetError(
                    f"cannot decode the image of {bad[0].text()}; training would stop there: convert the data "
                    "again with --verify decode or full (conversion checks TensorFlow's decoding rules there and "
                    "stores such files as PNG or rejects them; --verify header does not) or train with "
                    "--skip-undecodable"
                )
            decoded += total if decode_sample is None else min(total, decode_sample)
    unlisted = _unlisted_files(folder)
    return ValidationReport(data_url, shards, sum(per_split.values()), per_split, decoded, unlisted)


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
