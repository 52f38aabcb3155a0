"""Validate's one pass over a dataset's shards: each shard read once (one GET on an object store), its frames
walked and their CRCs checked, its record index compared with the walk, its records parsed against the manifest
and their images decoded with training's decoder, all from the bytes read.

The pass is one tf.data pipeline. A Python generator (run in a tf.data thread) reads, walks and checks shard after
shard (reads a few files ahead, `dataset.reads.read_files`), and hands each shard's bytes and record offsets on in
pieces of a few MB, walking ahead of TensorFlow; chunks of records are parsed in parallel, then each chunk's images
are decoded in one call (a chunk per core at once). A chunk whose record does not parse or
whose image does not decode drops out whole (`ignore_errors`): the records that did not come back are examined one
by one afterwards, eagerly, to name the first. A shard whose frames, record count or index are wrong stops the
pass. Decoding a chunk in one call rather than each record as a tf.data element: the 50,000-image benchmark's pass
3.05-3.26 s against 4.42-4.48 s, 5.9-6.2 s of CPU against 7.9-8.1 s (tf.data's own read-parse-decode pass
3.6-3.8 s), from a scratch comparison of the two pipelines in one process, alternated. tf.data's autotuning is off
(the parallelism is fixed): with it, one pass in two or three ended 2 s late, both cores idle after the last
record had come back (TensorFlow 2.15; the tf.data pass of the benchmark shows it too).
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import fsspec
import numpy as np

from dataset.decode import BadRecord, decode_image, decoder_error, op_error_text
from dataset.errors import DatasetError
from dataset.features import IMAGE_ENCODED, IMAGE_FILENAME
from dataset.manifest import Feature, Manifest
from dataset.reads import read_files
from dataset.record_index import check_index_spans
from dataset.tfrecord import FrameError, frame_spans

CHUNK_RECORDS = 512  # records parsed by one call
READ_AHEAD = 4  # files (shards and their indexes) read ahead of the walk; memory holds at most these
PIECE_BYTES = 4 << 20  # a shard goes to TensorFlow in pieces of about this size
PIECES_AHEAD = 8  # pieces walked ahead of the parse: the next shard's read and walk overlap the decoding
PARSE_CALLS = 2  # chunks parsed at once
_SHARD_KEY = 1 << 40  # a record's key: its shard's number times this, plus its number in the shard

UNDECODABLE_ADVICE = (
    "training would stop there: convert the data again with --verify decode or full (conversion checks "
    "TensorFlow's decoding rules there and stores such files as PNG or rejects them; --verify header does not) "
    "or train with --skip-undecodable"
)


@dataclass(frozen=True)
class ShardScan:
    """One shard to check: where it is, what the manifest says of it, and how many of its images to decode."""

    split: str
    url: str  # named in messages
    path: str  # on the dataset's filesystem
    num_records: int
    index_url: str | None = None
    index_path: str | None = None
    decode: int = 0  # its first `decode` records' images are decoded


@dataclass
class _Stop:
    """What stopped the generator, read by the caller's thread once the pipeline is drained."""

    shard: int | None = None
    error: DatasetError | None = None
    crash: BaseException | None = None


def feature_problem(manifest: Manifest, counts: np.ndarray) -> tuple[str, int] | None:
    """The first fixed-length feature (sorted by name) whose count of values in a record is wrong: (name, count).

    `counts` holds a record's number of values of each of `fixed_features(manifest)`. A count of 0 is right where
    the manifest counts records that leave the feature out (a missing value).
    """
    for (name, info), got in zip(fixed_features(manifest), counts.tolist()):
        if got != _width(info) and (got != 0 or info.null_count == 0):
            return name, got
    return None


def feature_message(manifest: Manifest, name: str, got: int, record: int, shard: str) -> str:
    """The one line naming a record whose feature `name` holds `got` values where the manifest says otherwise."""
    info = manifest.features[name]
    what = "lacks feature" if got == 0 else f"has {got} values (the manifest says {_width(info)}) for feature"
    return (
        f"record {record} of shard {shard} {what} {name!r} ({info.dtype}) that the manifest lists; "
        "the manifest does not describe these records: convert the data again"
    )


def fixed_features(manifest: Manifest) -> list[tuple[str, Feature]]:
    return [(name, info) for name, info in sorted(manifest.features.items()) if info.length == "fixed"]


def _width(info: Feature) -> int:
    return int(np.prod(info.shape)) if info.shape else 1


def presence_spec(tf: Any, manifest: Manifest) -> dict[str, Any]:
    """Every manifest feature as a VarLenFeature of its dtype: a missing feature parses as no value
    (a FixedLenFeature would fail without naming it), another dtype fails to parse."""
    dtypes = {"string": tf.string, "int64": tf.int64, "float32": tf.float32}
    return {name: tf.io.VarLenFeature(dtypes[info.dtype]) for name, info in manifest.features.items()}


def _shard_bytes(shard: ShardScan, data: bytes | OSError, compression: str) -> bytes:
    if isinstance(data, OSError):
        raise DatasetError(f"cannot read shard {shard.url}: {data.strerror or data}")
    if compression != "gzip":
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as err:
        raise DatasetError(f"corrupt shard {shard.url}: its gzip stream does not decompress ({err})") from None


def _walk(shard: ShardScan, data: bytes) -> list[tuple[int, int]]:
    """The shard's frames, their CRCs checked, their number the manifest's."""
    try:
        spans = frame_spans(data, shard.url)
    except FrameError as err:
        raise DatasetError(
            f"corrupt shard {shard.url} at byte offset {err.offset} (after {err.good} good records): {err.cause}"
        ) from None
    if len(spans) != shard.num_records:
        raise DatasetError(f"shard {shard.url} holds {len(spans)} records, the manifest says {shard.num_records}")
    return spans


def _checked_shards(
    fs: fsspec.AbstractFileSystem, shards: list[ShardScan], compression: str, stop: _Stop
) -> Iterator[tuple[int, int, bytes, np.ndarray, np.ndarray, int]]:
    """Each shard read once, walked and its index checked, then handed on in pieces of about `PIECE_BYTES` (so
    decoding starts before a whole shard is through): (shard number, number of the piece's first record, the piece's
    bytes, record offsets in it, record lengths, how many of the shard's records to decode). Stops at the first shard
    that is wrong, leaving its error in `stop` (this runs in a tf.data thread: an exception raised here would reach
    the caller as a TensorFlow error without its message)."""
    paths = [path for shard in shards for path in (shard.path, shard.index_path) if path]
    reads = read_files(fs, paths, READ_AHEAD)
    number = 0
    try:
        for number, shard in enumerate(shards):
            data = _shard_bytes(shard, next(reads)[1], compression)
            spans = _walk(shard, data)
            if shard.index_path:
                index = next(reads)[1]
                if isinstance(index, OSError):
                    raise DatasetError(f"cannot read index {shard.index_url}: {index.strerror or index}")
                check_index_spans(spans, index, shard.index_url or shard.index_path)
            at = np.asarray(spans, dtype=np.int64).reshape(-1, 2)
            first = 0
            while first < len(at):
                start = int(at[first, 0])
                last = max(first + 1, int(np.searchsorted(at[:, 0], start + PIECE_BYTES)))
                end = int(at[last - 1, 0] + at[last - 1, 1])
                piece = at[first:last]
                yield number, first, data[start:end], piece[:, 0] - start + 12, piece[:, 1] - 16, shard.decode
                first = last
    except DatasetError as err:
        stop.shard, stop.error = number, err
    except Exception as err:  # noqa: BLE001 - a bug: re-raised in the caller's thread
        stop.shard, stop.crash = number, err
    finally:
        reads.close()


def _parse_spec(tf: Any, manifest: Manifest) -> tuple[dict[str, Any], list[str]]:
    """The spec the pass parses records with, and the fixed-length features whose values it counts.

    A fixed-length feature that no record may leave out is parsed dense (the cheapest parse; a record that lacks it
    or holds another number of values fails to parse and is examined alone afterwards); one that records may leave
    out (a missing value) is counted; a variable-length one is parsed for its dtype only.
    """
    spec = presence_spec(tf, manifest)
    counted = []
    for name, info in fixed_features(manifest):
        if info.null_count == 0:
            spec[name] = tf.io.FixedLenFeature(info.shape, spec[name].dtype)
        else:
            counted.append(name)
    return spec, counted


def _pipeline(tf: Any, source: Any, manifest: Manifest, decode: str) -> Any:
    """Batches of the keys (`_key`) of the records of the shards `source` yields that parse (and, where `decode` asks,
    whose image decodes); a record holding a wrong number of values of a feature records may leave out comes back
    as -key-1. `decode`: "all" images, "some" (the records below each shard's limit) or "none"."""
    spec, counted = _parse_spec(tf, manifest)
    widths = tf.constant([_width(manifest.features[name]) for name in counted], tf.int32)
    signature = (
        tf.TensorSpec([], tf.int32),
        tf.TensorSpec([], tf.int64),
        tf.TensorSpec([], tf.string),
        tf.TensorSpec([None], tf.int64),
        tf.TensorSpec([None], tf.int64),
        tf.TensorSpec([], tf.int64),
    )

    # plain graph functions: no tensor decides Python control flow here, and AutoGraph reads the source again
    plain = tf.autograph.experimental.do_not_convert

    @plain
    def chunks(shard: Any, first: Any, data: Any, offsets: Any, lengths: Any, limit: Any) -> Any:
        keys = tf.cast(shard, tf.int64) * _SHARD_KEY + first + tf.range(tf.shape(offsets, out_type=tf.int64)[0])
        pieces = tf.data.Dataset.from_tensor_slices((keys, offsets, lengths)).batch(CHUNK_RECORDS)
        return pieces.map(plain(lambda key, at, size: (key, tf.strings.substr(data, at, size), limit)))

    @plain
    def parsed(keys: Any, records: Any, limit: Any) -> tuple[Any, ...]:
        values = tf.io.parse_example(records, spec)
        n = tf.shape(records)[0]
        wanted = tf.math.floormod(keys, _SHARD_KEY) < limit  # records to decode: the first `limit` of the shard
        if counted:
            counts = tf.stack(
                [
                    tf.math.bincount(tf.cast(values[name].indices[:, 0], tf.int32), minlength=n, maxlength=n)
                    for name in counted
                ],
                axis=1,
            )
            wrong = tf.reduce_any((counts != widths) & (counts != 0), axis=1)
            keys = tf.where(wrong, -keys - 1, keys)
        if decode == "none":
            # The keys depend on the parse's values, so the parse runs where nothing else reads them: tf.data's
            # optimizer prunes an op no output needs, even one named in tf.control_dependencies (a record that does
            # not parse then went unnoticed).
            first = tf.nest.flatten(values, expand_composites=True)[0]
            first = tf.strings.length(first) if first.dtype == tf.string else first
            return keys + tf.reduce_sum(tf.cast(first, tf.int64)) * 0
        encoded = values[IMAGE_ENCODED]
        if isinstance(encoded, tf.SparseTensor):
            encoded = tf.pad(tf.sparse.to_dense(encoded), [[0, 0], [0, 1]])[:, 0]
        else:
            encoded = tf.reshape(encoded, [n, -1])[:, 0]
        if decode == "all":
            return keys, encoded
        return keys, encoded, wanted

    @plain
    def size(encoded: Any) -> Any:
        return tf.size(decode_image(encoded, 3))

    @plain
    def size_if_wanted(item: Any) -> Any:
        encoded, wanted = item
        return tf.cond(wanted, lambda: size(encoded), lambda: tf.constant(0))

    @plain
    def decoded(keys: Any, encoded: Any, wanted: Any = None) -> Any:
        """The chunk's keys once each of its images (those `wanted`; all without it) decoded, one after another."""
        if wanted is None:  # no tf.cond around each decode where every image is decoded
            sizes = tf.map_fn(size, encoded, fn_output_signature=tf.int32, parallel_iterations=1)
        else:
            sizes = tf.map_fn(size_if_wanted, (encoded, wanted), fn_output_signature=tf.int32, parallel_iterations=1)
        return keys + tf.cast(sizes * 0, tf.int64)  # depends on the decodes, so they are not pruned

    records = tf.data.Dataset.from_generator(source, output_signature=signature).prefetch(PIECES_AHEAD)
    records = records.flat_map(chunks)
    records = records.map(parsed, num_parallel_calls=PARSE_CALLS, deterministic=False).ignore_errors()
    if decode != "none":
        records = records.map(decoded, num_parallel_calls=_cores(), deterministic=False).ignore_errors()
    options = tf.data.Options()
    options.autotune.enabled = False  # see the module doc: the parallelism is fixed, and the pass ends on time
    return records.prefetch(2).with_options(options)


def _cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def scan_shards(fs: fsspec.AbstractFileSystem, manifest: Manifest, shards: list[ShardScan]) -> None:
    """Check every record of `shards` (in the order given) in one read of each; see the module doc.

    Raises:
        DatasetError: one line naming the first shard (in the order given) that is wrong, and in it the first
            record that does not parse, holds another number of values than the manifest says, or (among the
            records to decode) whose image does not decode.
    """
    import tensorflow as tf

    stop = _Stop()
    if not any(shard.decode for shard in shards):
        decode = "none"
    else:
        decode = "all" if all(shard.decode == shard.num_records for shard in shards) else "some"
    pipeline = _pipeline(tf, lambda: _checked_shards(fs, shards, manifest.compression, stop), manifest, decode)
    seen = [np.zeros(shard.num_records, dtype=bool) for shard in shards]
    wrong_at = [shard.num_records for shard in shards]  # the first record whose counts are wrong, per shard
    for keys in pipeline.as_numpy_iterator():
        wrong = keys < 0
        keys = np.where(wrong, -keys - 1, keys)
        numbers, indices = keys // _SHARD_KEY, keys % _SHARD_KEY
        for number, index in zip(numbers[wrong].tolist(), indices[wrong].tolist()):
            wrong_at[number] = min(wrong_at[number], index)
        for number in np.unique(numbers).tolist():
            seen[number][indices[numbers == number]] = True
    if stop.crash is not None:
        raise stop.crash
    for number in range(len(shards) if stop.shard is None else stop.shard):
        candidates = np.flatnonzero(~seen[number][: wrong_at[number]]).tolist() + [wrong_at[number]]
        if candidates[0] < shards[number].num_records:
            raise DatasetError(_first_bad_record(fs, manifest, shards[number], candidates))
    if stop.error is not None:
        raise stop.error


def _first_bad_record(
    fs: fsspec.AbstractFileSystem, manifest: Manifest, shard: ShardScan, candidates: list[int]
) -> str:
    """The message for the first of `candidates` (record numbers of `shard`, ascending) that is wrong, read again
    record by record (an error path: the shard is read a second time)."""
    import tensorflow as tf

    data = _shard_bytes(shard, next(read_files(fs, [shard.path], 1))[1], manifest.compression)
    spans = _walk(shard, data)
    spec = presence_spec(tf, manifest)
    fixed = [name for name, _ in fixed_features(manifest)]
    for k in candidates:
        if k >= len(spans):
            break
        at, size = spans[k]
        try:
            values = tf.io.parse_example(tf.constant([data[at + 12 : at + size - 4]]), spec)
        except (tf.errors.InvalidArgumentError, tf.errors.DataLossError) as err:
            return f"corrupt shard {shard.url} at record {k} (after {k} good records): {op_error_text(err)}"
        except UnicodeDecodeError:  # TensorFlow's message quotes the record's bytes, which are not UTF-8
            return f"corrupt shard {shard.url} at record {k} (after {k} good records): it is not a tf.train.Example"
        counts = np.array([int(tf.size(values[name].values)) for name in fixed], dtype=np.int64)
        problem = feature_problem(manifest, counts)
        if problem:
            return feature_message(manifest, *problem, k, shard.url)
        if k < shard.decode:
            encoded = values[IMAGE_ENCODED].values.numpy()
            error = decoder_error(encoded[0]) if encoded.size else "the record holds no image"
            if error:
                filename = values[IMAGE_FILENAME].values.numpy() if IMAGE_FILENAME in values else np.array([])
                name = filename[0].decode("utf-8", "replace") if filename.size else "no image/filename"
                bad = BadRecord(shard.split, shard.url, k, name, error)
                return f"cannot decode the image of {bad.text()}; {UNDECODABLE_ADVICE}"
    return (
        f"records of shard {shard.url} from record {candidates[0]} did not come through the check, yet each reads "
        "alone; validate again, and report it if it stays"
    )
