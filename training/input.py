"""`input_fn`s built from the manifest and a split name alone (no hand-written feature spec).

Training: per-epoch shuffled file order, files sharded across ranks (records when there are
fewer files than ranks), parallel interleave, optional label filter, shuffle buffer, repeat,
batch, vectorized `parse_example`, parallel decode/resize/normalize, prefetch, and exactly
`steps` batches so every rank runs the same number of steps.
Evaluation: every record of the split once, in file order.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import tensorflow as tf

from conversion.errors import DatasetError
from conversion.listing import filesystem
from conversion.manifest import Manifest
from training.preprocess import images_from_encoded

KEY_FEATURE = "__key__"  # the record's key, passed along for predictions; no model reads it
IMAGE_KEY, LABEL_TEXT_KEY, LABEL_ID_KEY, FILENAME_KEY = (
    "image/encoded",
    "image/class/text",
    "image/class/label",
    "image/filename",
)


Parser = Callable[[tf.Tensor], tuple[dict, tf.Tensor]]  # a batch of serialized Examples → (features, labels)


@dataclass(frozen=True)
class InputSpec:
    """Where the records are and how to turn them into model inputs."""

    files: tuple[str, ...]
    compression: str  # "" or "GZIP", as tf.data names it
    parse: Parser
    threads: int  # tf.data threads for this rank
    keep_label_ids: tuple[int, ...] | None = None


def input_spec(
    data: str, manifest: Manifest, split: str, params: dict, threads: int, keep_labels: tuple[str, ...] | None = None
) -> InputSpec:
    """The `InputSpec` of one split.

    Raises:
        DatasetError: the split or a kept label does not exist.
    """
    if split not in manifest.splits:
        raise DatasetError(f"split {split!r} is not in {data}; it has {', '.join(sorted(manifest.splits))}")
    fs, root = filesystem(data)
    # Empty shards (all files rejected, or no row hashed there) are left out: a rank given only
    # empty files would repeat nothing forever while the others wait for it in an allreduce.
    files = tuple(fs.unstrip_protocol(f"{root}/{f.path}") for f in manifest.splits[split].files if f.num_records)
    if not files:
        raise DatasetError(f"split {split!r} of {data} has no records")
    keep = None
    if keep_labels is not None and manifest.kind != "images":
        raise DatasetError("--labels (a label subset) works for image datasets only")
    if keep_labels is not None:
        unknown = sorted(set(keep_labels) - set(manifest.labels))
        if unknown:
            raise DatasetError(f"labels {unknown} are not in the dataset; it has {', '.join(manifest.labels)}")
        keep = tuple(manifest.labels.index(label) for label in keep_labels)
    if manifest.kind == "table":
        from training.table_features import table_parser

        parse = table_parser(manifest)
    else:
        parse = image_parser(manifest.tf_feature_spec(), tuple(params["image_size"]), int(params["channels"]))
    return InputSpec(files, "GZIP" if manifest.compression == "gzip" else "", parse, max(1, threads), keep)


def split_records(manifest: Manifest, split: str, keep_labels: tuple[str, ...] | None = None) -> int:
    """Records of a split (of the kept labels only, when filtered), from the manifest's counts."""
    if keep_labels is None:
        return manifest.splits[split].num_records
    counts = manifest.splits[split].label_counts
    return sum(counts.get(label, 0) for label in keep_labels)


def steps_per_epoch(num_records: int, batch_size: int, num_ranks: int) -> int:
    """Full global batches in one pass over the records (at least 1)."""
    return max(1, num_records // (batch_size * num_ranks))


def epochs_to_steps(epochs: float, num_records: int, batch_size: int, num_ranks: int) -> int:
    return max(1, math.ceil(epochs * steps_per_epoch(num_records, batch_size, num_ranks)))


def _label_filter(keep: tuple[int, ...]) -> Callable[[tf.Tensor], tf.Tensor]:
    wanted = tf.constant(keep, tf.int64)

    def keep_record(serialized: tf.Tensor) -> tf.Tensor:
        label = tf.io.parse_single_example(serialized, {LABEL_ID_KEY: tf.io.FixedLenFeature([], tf.int64)})
        return tf.reduce_any(tf.equal(label[LABEL_ID_KEY], wanted))

    return keep_record


def image_parser(feature_spec: dict, image_size: tuple[int, int], channels: int) -> Parser:
    """Batch of image Examples → ({"image", "key"}, label names)."""

    def parse(serialized: tf.Tensor) -> tuple[dict, tf.Tensor]:
        parsed = tf.io.parse_example(serialized, feature_spec)  # vectorized over the batch
        features = {
            "image": images_from_encoded(parsed[IMAGE_KEY], image_size, channels),
            KEY_FEATURE: parsed[FILENAME_KEY],
        }
        return features, parsed[LABEL_TEXT_KEY]

    return parse


def _options(spec: InputSpec, deterministic: bool) -> tf.data.Options:
    options = tf.data.Options()
    options.threading.private_threadpool_size = spec.threads  # ranks sharing a machine share its cores
    options.threading.max_intra_op_parallelism = 1
    options.deterministic = deterministic
    return options


def train_input_fn(
    spec: InputSpec, batch_size: int, steps: int, rank: int, num_ranks: int, seed: int, shuffle_buffer: int
) -> Callable[[], tf.data.Dataset]:
    """Exactly `steps` shuffled training batches for one rank."""

    def input_fn() -> tf.data.Dataset:
        files = tf.data.Dataset.from_tensor_slices(list(spec.files))
        by_files = len(spec.files) >= num_ranks
        if by_files:
            files = files.shard(num_ranks, rank)  # Horovod: each rank reads its own files
        # A fixed seed with reshuffle_each_iteration gives a new, reproducible file order every epoch.
        files = files.shuffle(len(spec.files), seed=seed, reshuffle_each_iteration=True).repeat()
        records = files.interleave(
            lambda path: tf.data.TFRecordDataset(path, compression_type=spec.compression),
            cycle_length=min(len(spec.files), 4),
            num_parallel_calls=min(spec.threads, 4),
            deterministic=False,
        )
        if not by_files:
            records = records.shard(num_ranks, rank)  # Horovod: fewer files than ranks: shard records
        if spec.keep_label_ids is not None:
            records = records.filter(_label_filter(spec.keep_label_ids))
        records = records.shuffle(shuffle_buffer, seed=seed + rank)
        batches = records.batch(batch_size, drop_remainder=True).take(steps)
        batches = batches.map(spec.parse, num_parallel_calls=spec.threads, deterministic=False)
        return batches.prefetch(2).with_options(_options(spec, deterministic=False))

    return input_fn


def eval_input_fn(spec: InputSpec, batch_size: int) -> Callable[[], tf.data.Dataset]:
    """Every record of the split exactly once, in manifest order."""

    def input_fn() -> tf.data.Dataset:
        records = tf.data.TFRecordDataset(list(spec.files), compression_type=spec.compression)
        if spec.keep_label_ids is not None:
            records = records.filter(_label_filter(spec.keep_label_ids))
        batches = records.batch(batch_size).map(spec.parse, num_parallel_calls=spec.threads)
        return batches.prefetch(2).with_options(_options(spec, deterministic=True))

    return input_fn
