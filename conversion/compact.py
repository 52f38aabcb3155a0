"""Compaction: each split's small shards rewritten into shards of about a target size, as a new version.

Many small appends leave many small shards. A compaction concatenates whole shards: a new shard is several old
small shards' TFRecord frames copied in order (each frame's two CRCs checked on the way; gzip shards are
decompressed and recompressed as one gzip stream), so every record keeps its bytes, its split and its place in
the split's order, and each old shard goes into exactly one new shard. Shards at or above the minimum stay as
they are (same names); a small shard with no small neighbour to join stays too.

The new shards go into a run folder of their own (`conversion.publish.RunFolder`) with a copy of the current rejected
report and, when the version has one, its file index with each file's shard remapped; the version's manifest lists
the new shards in place of the old ones (counts, labels and statistics unchanged) and is committed as every writer
commits (`RunFolder.commit`: one put-if-absent of the next version file; a concurrent commit wins, this run's folder
is removed).
The old shards stay for the older versions that list them until `jobs/versions.py --vacuum` removes them.
No Spark: it is byte copying, done by the driver, a few shards at a time.
"""

from __future__ import annotations

import gzip
import posixpath
import time
import zlib
from collections import deque
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import BinaryIO

from conversion.publish import RunFolder, staged_output
from dataset.errors import DatasetError, OptionError
from dataset.file_index import read_index, remap_shards, write_index
from dataset.layout import REJECTED_DIR, DatasetFolder, index_file_name, shard_file_name
from dataset.manifest import Manifest, ShardFile, SplitInfo
from dataset.record_index import render_index
from dataset.tfds_metadata import one_template
from dataset.tfrecord import frame_spans
from dataset.versions import Version, public_url, read_version

MB = 1024 * 1024
GZIP_LEVEL = 6  # zlib's default; on small image records 0.6% larger than level 9 and 1.5x faster (measured here)


@dataclass(frozen=True)
class CompactOptions:
    """What to compact and into what.

    Attributes:
        target_shard_mb: a new shard holds small shards up to about this size (stored bytes).
        min_shard_mb: shards under this size are small (default: half the target); the others stay.
        splits: the splits to compact (default: every split).
        version: the version to compact; it must be the current one (default: the current one).
        threads: old shards read (and checked) at once, ahead of the one new shard being written; at most this
            many are held in memory.
        whole_splits: a split whose shards do not share one folder and one name pattern (after an append), or
            that has shards to compact, is rewritten whole into the run folder (large shards copied as they are),
            so each split has one file template: what TFDS needs (`dataset.tfds_metadata`).
    """

    target_shard_mb: float = 128.0
    min_shard_mb: float | None = None
    splits: tuple[str, ...] = ()
    version: int | None = None
    threads: int = 8
    whole_splits: bool = False

    def __post_init__(self) -> None:
        if not self.target_shard_mb > 0:
            raise OptionError(f"--target-shard-mb must be above 0, got {self.target_shard_mb}")
        if self.min_shard_mb is not None and not 0 < self.min_shard_mb <= self.target_shard_mb:
            raise OptionError(
                f"--min-shard-mb must be above 0 and at most --target-shard-mb {self.target_shard_mb}, "
                f"got {self.min_shard_mb}"
            )
        if self.threads < 1:
            raise OptionError(f"threads must be at least 1, got {self.threads}")

    @property
    def target_bytes(self) -> int:
        return int(self.target_shard_mb * MB)

    @property
    def min_bytes(self) -> int:
        return int((self.target_shard_mb / 2 if self.min_shard_mb is None else self.min_shard_mb) * MB)


@dataclass(frozen=True)
class ShardGroup:
    """Old shards of one split that become one new shard, `name` in the run folder."""

    split: str
    name: str
    shards: tuple[ShardFile, ...]


@dataclass(frozen=True)
class CompactSummary:
    data_url: str
    parent: int  # the version compacted
    version: int | None  # the version committed (None: nothing to compact)
    run: str | None  # the run folder holding the new shards
    shards_before: dict[str, int]  # per split compacted
    shards_after: dict[str, int]
    shards_read: int
    shards_written: int
    bytes_read: int
    bytes_written: int
    seconds: float

    def text(self) -> str:
        shown = public_url(self.data_url)
        if self.version is None:
            return (
                f"nothing to compact in version {self.parent} of {shown}: no two small shards side by side in a split"
            )
        per_split = ", ".join(
            f"{s} {self.shards_before[s]} -> {self.shards_after[s]}" for s in sorted(self.shards_before)
        )
        return (
            f"compacted version {self.parent} of {shown} into version {self.version}: shards {per_split}; "
            f"{self.shards_read} shards ({self.bytes_read} bytes) rewritten into {self.shards_written} "
            f"({self.bytes_written} bytes) in {self.run} in {self.seconds:.1f} s; records unchanged"
        )


def plan_groups(manifest: Manifest, options: CompactOptions) -> list[ShardGroup]:
    """The groups of small shards to concatenate, split by split in manifest order: consecutive small shards,
    greedily, while the group stays within the target (a group holds at least two shards; with `whole_splits`,
    a split rewritten whole has every shard in a group, alone if need be)."""
    wanted = options.splits or tuple(sorted(manifest.splits))
    for split in wanted:
        manifest.split(split)  # an unknown split: one line
    groups: list[ShardGroup] = []
    for split in wanted:
        runs: list[tuple[ShardFile, ...]] = []
        current: list[ShardFile] = []
        for shard in manifest.splits[split].files:
            small = shard.bytes < options.min_bytes
            if current and (not small or sum(f.bytes for f in current) + shard.bytes > options.target_bytes):
                runs.append(tuple(current))
                current = []
            if small:
                current.append(shard)
        runs.append(tuple(current))
        kept = [run for run in runs if len(run) >= 2]
        files = manifest.splits[split].files
        if options.whole_splits and (kept or not one_template(files)):
            kept = _whole(files, options.target_bytes)
        groups += [
            ShardGroup(split, shard_file_name(split, i, len(kept), manifest.compression), run)
            for i, run in enumerate(kept)
        ]
    return groups


def _whole(files: tuple[ShardFile, ...], target: int) -> list[tuple[ShardFile, ...]]:
    """Every shard of a split in groups of consecutive shards up to `target` bytes (a larger shard alone)."""
    groups: list[list[ShardFile]] = []
    for shard in files:
        if not groups or sum(f.bytes for f in groups[-1]) + shard.bytes > target:
            groups.append([])
        groups[-1].append(shard)
    return [tuple(group) for group in groups]


def compact(data_url: str, options: CompactOptions) -> CompactSummary:
    """Commit a version of `data_url` whose small shards are concatenated into shards of about the target size.

    Raises:
        DatasetError: no committed dataset, `options.version` is not the current version, an unknown split,
            or an old shard that is missing, corrupt or holds another count than its manifest says.
        CommitConflict: another writer committed first (the run folder is removed).
    """
    parent = read_version(data_url)
    if options.version is not None and options.version != parent.number:
        raise DatasetError(
            f"version {options.version} of {public_url(data_url)} is not the current one ({parent.number}); a "
            f"compaction builds on the current version: roll back to {options.version} first or leave --version out"
        )
    return compact_version(data_url, parent, options)


def compact_version(data_url: str, parent: Version, options: CompactOptions) -> CompactSummary:
    """`compact` of the version `parent`, read before: its compaction commits as the version after it.

    Raises:
        CommitConflict: `parent` is no longer the current version, or another writer committed first (the run
            folder is removed).
    """
    start = time.perf_counter()
    groups = plan_groups(parent.manifest, options)
    before = {g.split: len(parent.manifest.splits[g.split].files) for g in groups}
    if not groups:
        return CompactSummary(data_url, parent.number, None, None, {}, {}, 0, 0, 0, 0, time.perf_counter() - start)
    with staged_output(None, data_url, "append") as run:
        with ThreadPoolExecutor(options.threads, thread_name_prefix="compact") as pool:
            written = {g.name: _write(run, parent.manifest, g, pool, options.threads) for g in groups}
        manifest = _compacted(parent.manifest, groups, run.run, written)
        manifest = _with_index(data_url, parent.manifest, manifest, groups, run.run)
        manifest.check()
        _keep_report(run)
        run.parent = parent  # the version the groups were planned on: a commit since then is a conflict
        version = run.commit(manifest, "compact", in_run=False)
    after = {split: len(manifest.splits[split].files) for split in before}
    return CompactSummary(
        data_url,
        parent.number,
        version.number,
        run.run,
        before,
        after,
        sum(len(g.shards) for g in groups),
        len(groups),
        sum(f.bytes for g in groups for f in g.shards),
        sum(size for size, _ in written.values()),
        time.perf_counter() - start,
    )


def _keep_report(run: RunFolder) -> None:
    """Copy the current version's rejected report (the root `_rejected/`) into the run folder: the commit makes
    the run's report the root one, and a rollback to this version finds it there (a compaction rejects nothing)."""
    source = f"{run.output}/{REJECTED_DIR}"
    run.fs.invalidate_cache(run.output)
    for path in run.fs.find(source):  # file by file: one server-side copy each on object stores
        copy = f"{run.path}/{REJECTED_DIR}/{path[len(source) + 1 :]}"
        run.fs.makedirs(posixpath.dirname(copy), exist_ok=True)
        run.fs.copy(path, copy)


def _compacted(
    manifest: Manifest, groups: list[ShardGroup], run: str, written: dict[str, tuple[int, str | None]]
) -> Manifest:
    """`manifest` with each group's shards replaced, at the place of its first shard, by the new shard."""
    first = {g.shards[0].path: g for g in groups}
    gone = {f.path for g in groups for f in g.shards}
    splits = {}
    for name, split in manifest.splits.items():
        files = []
        for shard in split.files:
            if shard.path in first:
                group = first[shard.path]
                size, index = written[group.name]
                files.append(ShardFile(group.name, sum(f.num_records for f in group.shards), size, index).under(run))
            elif shard.path not in gone:
                files.append(shard)
        splits[name] = SplitInfo(split.num_records, tuple(files), split.label_counts)
    return replace(manifest, splits=splits)


def _with_index(data_url: str, parent: Manifest, manifest: Manifest, groups: list[ShardGroup], run: str) -> Manifest:
    """`manifest` naming a copy of the parent's file index in run folder `run`, each file's shard remapped to the
    new shard that holds its record now (when the parent has an index)."""
    index = read_index(data_url, parent)
    if index is None:
        return manifest
    moved = {shard.path: f"{run}/{group.name}" for group in groups for shard in group.shards}
    return replace(manifest, file_index=write_index(data_url, run, remap_shards(index, moved)))


def _write(run: RunFolder, manifest: Manifest, group: ShardGroup, pool: Executor, ahead: int) -> tuple[int, str | None]:
    """Write `group`'s shards' frames, checked, into one new shard; its size in bytes and its record index's path
    in the run folder (uncompressed shards: from the frames just walked, no second read). The old shards are read
    by `pool`, up to `ahead` of them before the one being written (a GET's latency on object stores overlaps)."""
    folder = DatasetFolder(run.output_url)
    path = f"{run.path}/{group.name}"
    spans: list[tuple[int, int]] = []

    def put(out: BinaryIO, chunk: tuple[bytes, list[tuple[int, int]]]) -> None:
        data, offsets = chunk
        base = spans[-1][0] + spans[-1][1] if spans else 0
        spans.extend((base + at, size) for at, size in offsets)
        out.write(data)

    with run.fs.open(path, "wb") as raw:
        out: BinaryIO = raw
        if manifest.compression == "gzip":
            out = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=GZIP_LEVEL)
        reads: deque[Future[tuple[bytes, list[tuple[int, int]]]]] = deque()
        for shard in group.shards:
            reads.append(pool.submit(_frames, folder, shard, manifest.compression))
            if len(reads) >= ahead:
                put(out, reads.popleft().result())
        while reads:
            put(out, reads.popleft().result())
        if out is not raw:
            out.close()
    if manifest.compression != "none":
        return int(run.fs.size(path)), None
    index = index_file_name(group.name)
    run.fs.pipe_file(f"{run.path}/{index}", render_index(spans))
    return int(run.fs.size(path)), index


def _frames(folder: DatasetFolder, shard: ShardFile, compression: str) -> tuple[bytes, list[tuple[int, int]]]:
    """The TFRecord frames of `shard`, uncompressed, and their (offset, size), after checking every frame and the
    record count.

    Raises:
        DatasetError: the shard is missing, not valid TFRecord (or gzip) data, or holds another count.
    """
    url = folder.file_url(shard.path)
    try:
        data = folder.fs.cat_file(folder.path(shard.path))
    except FileNotFoundError as err:
        raise DatasetError(f"shard {url} listed in the manifest is missing; nothing was committed") from err
    if compression == "gzip":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as err:
            raise DatasetError(f"shard {url} is not valid gzip data ({err}); nothing was committed") from err
    spans = frame_spans(data, url)
    count = len(spans)
    if count != shard.num_records:
        raise DatasetError(
            f"shard {url} holds {count} records, the manifest says {shard.num_records}; nothing was committed "
            "(python jobs/validate.py checks the dataset)"
        )
    return data, spans
