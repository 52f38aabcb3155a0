"""`input_fn`s built from the manifest and a split name alone (no hand-written feature spec).

Training: per-epoch shuffled file order, files sharded across ranks (records when there are
fewer files than ranks), parallel interleave, optional label filter, shuffle buffer, repeat,
batch, vectorized `parse_example`, parallel decode/resize/normalize, prefetch, and exactly
`steps` batches so every rank runs the same number of steps.
Evaluation: every record of the split once, in file order.

Shards on an object store reach tf.data through a `FileFeed` (training/streaming.py): the same file order,
computed in Python from the same seeded file pipeline, handed over as local paths once each file is on disk.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import tensorflow as tf

from dataset.errors import DatasetError
from dataset.layout import tf_compression
from dataset.manifest import Manifest, shard_urls
from training.config import INTERLEAVE_CYCLE

KEY_FEATURE = "__key__"  # every parser passes the record's key along under this name; no model reads it

Parser = Callable[[tf.Tensor], tuple[dict, tf.Tensor]]  # a batch of serialized Examples → (features, labels)
RecordFilter = Callable[[tf.Tensor], tf.Tensor]  # a serialized Example → keep it (bool)


class FileFeed(Protocol):
    """Local files that tf.data reads as they become available (shards fetched from an object store)."""

    @property
    def failure(self) -> str | None:
        """One line naming the file that could not be made available, if one could not."""

    def on_disk(self) -> tuple[str, ...] | None:
        """The files on local disk now (None: all of them)."""

    def close(self) -> None:
        """Stop: no more files; those the feed made local are removed."""

    def paths(self, order: Callable[[], Iterator[str]], count: int | None = None) -> tf.data.Dataset:
        """The places 0, 1, ... (`count` of them, or endless) of the files of `order()` (some of the spec's)."""

    def read(self, place: tf.Tensor, compression: str) -> tf.data.Dataset:
        """The records of the file at one place of the order, once it can be opened (the feed may free the file
        after its last record)."""


@dataclass(frozen=True)
class InputSpec:
    """Where the records are and how to turn them into model inputs."""

    files: tuple[str, ...]
    compression: str  # "" or "GZIP", as tf.data names it
    parse: Parser
    threads: int  # tf.data threads for this rank
    keep: RecordFilter | None = None
    feed: FileFeed | None = None  # None: `files` are readable now; else they become so through the feed
    deterministic: bool = False  # records in the same order on every run (tf.data waits for a slow file)


def input_spec(
    data: str, manifest: Manifest, split: str, parse: Parser, threads: int, keep: RecordFilter | None = None
) -> InputSpec:
    """The `InputSpec` of one split; `parse` and `keep` come from the dataset's kind.

    Raises:
        DatasetError: the split does not exist or has no records.
    """
    # Empty shards (all files rejected, or no row hashed there) are left out: a rank given only
    # empty files would repeat nothing forever while the others wait for it in an allreduce.
    files = tuple(shard_urls(data, manifest, split, non_empty=True))
    if not files:
        raise DatasetError(f"split {split!r} of {data} has no records")
    return InputSpec(files, tf_compression(manifest.compression), parse, max(1, threads), keep)


def rank_files(files: tuple[str, ...], rank: int, num_ranks: int) -> tuple[str, ...]:
    """The files one rank reads: every `num_ranks`-th from its own position (what `Dataset.shard` keeps), or all of
    them when there are fewer files than ranks (the ranks then share records)."""
    return tuple(files[rank::num_ranks]) if len(files) >= num_ranks else tuple(files)


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


def dataset_options(threads: int, deterministic: bool) -> tf.data.Options:
    """The tf.data options of every input pipeline: a private pool of `threads`, order as asked."""
    options = tf.data.Options()
    options.threading.private_threadpool_size = threads  # ranks sharing a machine share its cores
    options.threading.max_intra_op_parallelism = 1
    options.deterministic = deterministic
    return options


def file_order(files: tuple[str, ...], rank: int, num_ranks: int, seed: int) -> tf.data.Dataset:
    """The endless order in which one rank reads `files`: its own files (all of them when there are fewer files than
    ranks), in a new order every epoch. The permutation depends on the number of files and the seeds only."""
    order = tf.data.Dataset.from_tensor_slices(list(files))
    if len(files) >= num_ranks:
        order = order.shard(num_ranks, rank)  # Horovod: each rank reads its own files
    # A fixed seed with reshuffle_each_iteration gives a new, reproducible file order every epoch.
    return order.shuffle(len(files), seed=seed, reshuffle_each_iteration=True).repeat()


def python_file_order(files: tuple[str, ...], rank: int, num_ranks: int, seed: int, graph_seed: int) -> Iterator[str]:
    """`file_order` as Python strings, as a graph whose seed is `graph_seed` gives it (the Estimator's graph has
    `tf_random_seed`): the same pipeline run in a private graph, so the caller's graph and seeds are untouched."""
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(graph_seed)
        following = tf.compat.v1.data.make_one_shot_iterator(file_order(files, rank, num_ranks, seed)).get_next()
    with tf.compat.v1.Session(graph=graph, config=tf.compat.v1.ConfigProto(inter_op_parallelism_threads=1)) as session:
        while True:
            yield session.run(following).decode()


def train_input_fn(
    spec: InputSpec, batch_size: int, steps: int, rank: int, num_ranks: int, seed: int, shuffle_buffer: int
) -> Callable[[], tf.data.Dataset]:
    """Exactly `steps` shuffled training batches for one rank."""

    def input_fn() -> tf.data.Dataset:
        by_files = len(spec.files) >= num_ranks
        cycle = min(len(spec.files), INTERLEAVE_CYCLE)
        if spec.feed is None:
            records = file_order(spec.files, rank, num_ranks, seed).interleave(
                lambda path: tf.data.TFRecordDataset(path, compression_type=spec.compression),
                cycle_length=cycle,
                num_parallel_calls=min(spec.threads, cycle),  # tf.data refuses more calls than the cycle length
                deterministic=spec.deterministic,
            )
        else:  # the same order, computed in Python with the seeds this graph gives the shuffle
            graph_seed = tf.compat.v1.get_seed(seed)[0]
            places = spec.feed.paths(lambda: python_file_order(spec.files, rank, num_ranks, seed, graph_seed))
            # An element waits for its file: in a parallel interleave, waiting elements would hold every worker
            # thread while files already on disk are not read. Sequential (the order of a deterministic parallel
            # one), read ahead by the prefetch's thread.
            read = lambda place: spec.feed.read(place, spec.compression)  # noqa: E731
            records = places.interleave(read, cycle_length=cycle).prefetch(tf.data.AUTOTUNE)
        if not by_files:
            records = records.shard(num_ranks, rank)  # Horovod: fewer files than ranks: shard records
        if spec.keep is not None:
            records = records.filter(spec.keep)
        records = records.shuffle(shuffle_buffer, seed=seed + rank)
        batches = records.batch(batch_size, drop_remainder=True).take(steps)
        batches = batches.map(spec.parse, num_parallel_calls=spec.threads, deterministic=spec.deterministic)
        return batches.prefetch(2).with_options(dataset_options(spec.threads, deterministic=spec.deterministic))

    return input_fn


def read_in_order(spec: InputSpec, files: tuple[str, ...]) -> tf.data.Dataset:
    """The records of `files` (some of the spec's), one file after the other."""
    if spec.feed is None:
        return tf.data.TFRecordDataset(list(files), compression_type=spec.compression)
    places = spec.feed.paths(lambda: iter(files), len(files))
    return places.flat_map(lambda place: spec.feed.read(place, spec.compression))


def eval_input_fn(spec: InputSpec, batch_size: int) -> Callable[[], tf.data.Dataset]:
    """Every record of the split exactly once, in manifest order."""

    def input_fn() -> tf.data.Dataset:
        records = tf.data.TFRecordDataset(list(spec.files), compression_type=spec.compression)
        if spec.keep is not None:
            records = records.filter(spec.keep)
        batches = records.batch(batch_size).map(spec.parse, num_parallel_calls=spec.threads)
        return batches.prefetch(2).with_options(dataset_options(spec.threads, deterministic=True))

    return input_fn
