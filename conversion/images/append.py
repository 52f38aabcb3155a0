"""`--mode append`: what is new since the current version, and version N+1 = N's shards + this run's.

The run lists ROOT (or `--list-prefix`), compares the listing with the current version's file index
(`dataset.file_index`), converts only the files the index has not seen into new shards in its run folder, and
commits a manifest that lists the parent's shards as they are plus its own. Label ids never move: a new label
folder gets the next id. Counts are cumulative over the version's file index: `num_files_seen` is its rows,
`num_rejected` its rejected and skipped rows by reason, so `Manifest.check` reconciles.

Changed and deleted source files (`--on-change`): `keep` (the default) keeps their records as they are, so every
record of version N is in N+1 byte for byte; `replace` copies each shard that holds one without its record
(`conversion.images.shard_walk`) and converts the changed files again as new ones.
"""

from __future__ import annotations

import dataclasses
import json
import posixpath
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import SparkSession

from conversion.images.discovery import SKIP_REASONS, Skip
from conversion.images.options import ImageConvertOptions
from conversion.images.plan import ShardPlan, shard_table
from conversion.images.shard_walk import Rewrite, Rewritten, ShardKeys, rewrite_shard, shard_keys
from dataset.errors import DatasetError, OptionError, StorageError
from dataset.file_index import REJECTED, SKIPPED, WRITTEN, FileIndex, IndexComparison, compare, merge, read_index
from dataset.fs import filesystem, list_files
from dataset.layout import REJECTED_REPORT, DatasetFolder
from dataset.listing import Listing, sorted_listing
from dataset.manifest import Manifest, ShardFile, SplitInfo
from dataset.versions import Version

# Options whose value changes the bytes of a record or the split of a file: an append must use the parent's.
SAME_AS_PARENT = ("splits", "split_from_folders", "compression", "seed")
SAME_TRANSFORM = ("resize", "reencode", "jpeg_quality", "keep_orientation")


@dataclass(frozen=True, eq=False)
class AppendPlan:
    """What an append does, decided on the driver from the listing and the parent's index.

    `convert`: listing rows to convert; `dropped_at`: index rows whose records leave the version (replace);
    `forgotten_at`: index rows that leave the index (replace: deleted files); the counts are of written files.
    """

    index: FileIndex
    comparison: IndexComparison
    convert: np.ndarray
    dropped_at: np.ndarray
    forgotten_at: np.ndarray
    kept_changed: int
    kept_deleted: int
    replaced: int

    @property
    def nothing_new(self) -> bool:
        return not len(self.convert) and not len(self.dropped_at) and not len(self.forgotten_at)


def plan_append(
    listing: Listing, index: FileIndex, on_change: str, retry_rejected: bool, prefixes: tuple[str, ...] | None = None
) -> AppendPlan:
    """Which listed files to convert and which records to drop.

    New files are converted. A changed file that has a record is kept (`keep`) or converted again with its old
    record dropped (`replace`); a changed file without a record (rejected, skipped) is tried again. A deleted
    file's record stays (`keep`) or is dropped with its index row (`replace`). Unchanged rejected files are tried
    again only with `retry_rejected`.
    """
    found = compare(listing, index, prefixes)
    status = index.column("status").to_numpy(zero_copy_only=False)
    changed_written = status[found.changed_at] == WRITTEN
    deleted_written = status[found.deleted] == WRITTEN
    retry = found.unchanged[status[found.unchanged_at] == REJECTED] if retry_rejected else np.zeros(0, dtype=np.int64)
    convert = [found.new, found.changed[~changed_written], retry]
    if on_change == "replace":
        convert.append(found.changed[changed_written])
        dropped = np.concatenate([found.changed_at[changed_written], found.deleted[deleted_written]])
        forgotten = found.deleted
        kept_changed = kept_deleted = 0
        replaced = int(changed_written.sum() + deleted_written.sum())
    else:
        dropped = forgotten = np.zeros(0, dtype=np.int64)
        kept_changed, kept_deleted, replaced = int(changed_written.sum()), int(deleted_written.sum()), 0
    return AppendPlan(
        index=index,
        comparison=found,
        convert=np.sort(np.concatenate(convert)).astype(np.int64),
        dropped_at=np.sort(dropped).astype(np.int64),
        forgotten_at=np.sort(forgotten).astype(np.int64),
        kept_changed=kept_changed,
        kept_deleted=kept_deleted,
        replaced=replaced,
    )


def list_input(options: ImageConvertOptions, appending: bool) -> tuple[Listing, tuple[str, ...] | None]:
    """The listing of ROOT, or of the folders `list_prefix` names under ROOT, with paths still relative to ROOT (so
    splits do not move), and those folders (None: all of ROOT). A `*` segment stands for every folder at that level
    (`*/2026-12-06`: that date folder in every label folder). A prefix that names no folder lists nothing when
    appending (a day without new data)."""
    if options.list_prefix is None:
        return list_files(options.input), None
    prefixes = expand_prefix(options.input, options.list_prefix.strip("/"))
    parts = []
    for prefix in prefixes:
        try:
            listing = list_files(f"{options.input.rstrip('/')}/{prefix}")
        except StorageError:
            continue  # a folder listed a moment ago and gone, or a file where a folder was named
        paths = pc.binary_join_element_wise(
            pa.scalar(prefix, pa.large_string()), listing.relpaths, pa.scalar("/", pa.large_string())
        )
        problems = {f"{prefix}/{path}": problem for path, problem in listing.problems.items()}
        parts.append(Listing(paths, listing.sizes, problems, listing.stamps))
    if not parts and not appending:
        raise StorageError(
            f"--list-prefix {options.list_prefix} names no folder under --input {options.input}; pass folders "
            "relative to ROOT (a * segment for every folder at that level)"
        )
    return _joined(parts), tuple(prefixes)


def expand_prefix(root_url: str, pattern: str) -> list[str]:
    """The folders under `root_url` that `pattern` names, relative to it, sorted; `*` segments expanded by one
    listing of each folder they stand in (hidden folders left out)."""
    fs, root = filesystem(root_url)
    found = [""]
    for part in pattern.split("/"):
        if part != "*":
            found = [f"{prefix}{part}/" for prefix in found]
            continue
        deeper = []
        for prefix in found:
            try:
                entries = fs.ls(f"{root.rstrip('/')}/{prefix}".rstrip("/"), detail=True)
            except (FileNotFoundError, NotADirectoryError):
                continue
            names = (posixpath.basename(e["name"].rstrip("/")) for e in entries if e["type"] == "directory")
            deeper += [f"{prefix}{name}/" for name in names if not name.startswith((".", "_"))]
        found = deeper
    return sorted(prefix.rstrip("/") for prefix in found)


def _joined(parts: list[Listing]) -> Listing:
    if not parts:
        return Listing(pa.array([], pa.large_string()), np.zeros(0, dtype=np.int64))
    if len(parts) == 1:
        return parts[0]
    stamps = None if any(p.stamps is None for p in parts) else pa.concat_arrays([p.stamps for p in parts])
    problems = {k: v for p in parts for k, v in p.problems.items()}
    paths = pa.concat_arrays([p.relpaths.cast(pa.large_string()) for p in parts])
    return sorted_listing(paths, np.concatenate([p.sizes for p in parts]), problems, stamps)


def check_same_conversion(parent: Version, options: ImageConvertOptions) -> None:
    """Refuse an append whose options would write records unlike the parent's (another resize, codec, split...).

    Raises:
        OptionError: one differs, or the dataset is not an image dataset.
    """
    if parent.manifest.kind != "images":
        raise OptionError(
            f"{options.output} holds a {parent.manifest.kind} dataset; --mode append of images needs an image dataset "
            "(choose another --output)"
        )
    ours = _plain(dataclasses.asdict(options))
    theirs = parent.manifest.options
    pairs = [(key, ours.get(key), theirs[key]) for key in SAME_AS_PARENT if key in theirs]
    transform = theirs.get("transform") or {}
    pairs += [(key, ours["transform"].get(key), transform[key]) for key in SAME_TRANSFORM if key in transform]
    for key, mine, before in pairs:
        if mine != before:
            raise OptionError(
                f"--{key.replace('_', '-')} {_shown(mine)} differs from version {parent.number}'s "
                f"{_shown(before)}: an append writes records as the version it extends; pass the same value "
                "or --mode overwrite"
            )


def _plain(value: object) -> object:
    return json.loads(json.dumps(value))


def _shown(value: object) -> str:
    return "(none)" if value is None else json.dumps(value) if not isinstance(value, str) else value


def merged_labels(parent: Version, found_labels: Sequence[str], fixed: Sequence[str] | None) -> tuple[str, ...]:
    """The label list of version N+1: the parent's, then new label folders sorted among themselves (or the fixed
    `--labels`, which must begin with the parent's).

    Raises:
        OptionError: `fixed` does not begin with the parent's labels (ids would move).
    """
    old = parent.manifest.labels
    if fixed is not None:
        if tuple(fixed[: len(old)]) != old:
            raise OptionError(
                f"--labels {','.join(fixed)} does not begin with version {parent.number}'s labels "
                f"{','.join(old)}: label ids never move in an append; add new labels at the end"
            )
        return tuple(fixed)
    return old + tuple(sorted(set(found_labels) - set(old)))


def fixed_labels(parent: Version, options: ImageConvertOptions) -> tuple[str, ...] | None:
    """`--labels`, or the fixed list the parent was converted with (its other folders stay rejected)."""
    if options.labels is not None:
        return options.labels
    before = parent.manifest.options.get("labels")
    return tuple(before) if before else None


def parent_index(spark: SparkSession, data_url: str, parent: Version) -> tuple[FileIndex, bool]:
    """The parent's file index, or one built from its records when it has none (True: built)."""
    index = read_index(data_url, parent.manifest)
    if index is not None:
        return index, False
    return index_from_records(spark, data_url, parent), True


def index_from_records(spark: SparkSession, data_url: str, version: Version) -> FileIndex:
    """The file index of a version that has none: each record's `image/filename` (read from its shards in Spark
    tasks, a byte-level walk) with unknown size and stamp, plus the rows of the version's rejected report.

    Raises:
        DatasetError: a shard is unreadable or holds a record twice.
    """
    folder = DatasetFolder(data_url)
    shards = [(f.path, split) for split, info in version.manifest.splits.items() for f in info.files]
    split_of = dict(shards)
    urls = [(path, folder.file_url(path)) for path, _ in shards]
    sc = spark.sparkContext
    sc.setJobDescription(f"convert_images --mode append: the filenames of version {version.number}'s records")
    found: list[ShardKeys] = (
        sc.parallelize(urls, max(1, len(urls))).map(lambda item: shard_keys(*item)).collect() if urls else []
    )
    relpaths = [relpath for keys in found for relpath, _ in keys.keys]
    splits = [split_of[keys.shard] for keys in found for _ in keys.keys]
    shard_of = [keys.shard for keys in found for _ in keys.keys]
    if len(set(relpaths)) != len(relpaths):
        twice = sorted(p for p, n in Counter(relpaths).items() if n > 1)
        raise DatasetError(f"version {version.number} of {data_url} holds {twice[0]} twice; convert it again in full")
    written = FileIndex.of(relpaths, np.full(len(relpaths), -1), None, splits, shard_of, WRITTEN)
    report = _rejected_report(folder, version)
    rejected = FileIndex.of(
        [row["path"] for row in report],
        np.full(len(report), -1),
        statuses=[SKIPPED if row["reason"] in SKIP_REASONS else REJECTED for row in report],
        reasons=[row["reason"] for row in report],
    )
    return merge(rejected, written)


def _rejected_report(folder: DatasetFolder, version: Version) -> list[dict]:
    """The rows of the version's rejected report (its run folder's, or the root's for a folder from before
    versions); none if it is gone."""
    path = folder.path(f"{version.info.run}/{REJECTED_REPORT}" if version.info.run else REJECTED_REPORT)
    try:
        text = folder.fs.cat_file(path).decode("utf-8")
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def run_index(
    listing: Listing, plans: Sequence[ShardPlan], shard_paths: dict[tuple[str, int], str], rejects: Iterable[Skip]
) -> FileIndex:
    """The index rows of one run's files: each planned file written to its shard (`shard_paths[(split, index)]`,
    dataset-relative) unless rejected; every reject and skip with its reason; sizes and stamps from `listing`."""
    tables = [shard_table(plan.files) for plan in plans]
    relpaths = pa.concat_arrays([t.relpaths for t in tables]) if tables else pa.array([], pa.large_string())
    counts = [len(t) for t in tables]
    splits = pa.array(np.repeat(np.array([p.split for p in plans], dtype=object), counts), pa.string())
    shards = [shard_paths[(p.split, p.index)] for p in plans]
    written = FileIndex.of(
        relpaths, np.zeros(len(relpaths)), None, splits, pa.array(np.repeat(np.array(shards, object), counts))
    )
    skips = list(rejects)
    bad = FileIndex.of(
        [s.relpath for s in skips],
        np.zeros(len(skips)),
        statuses=[SKIPPED if s.reason in SKIP_REASONS else REJECTED for s in skips],
        reasons=[s.reason for s in skips],
    )
    rows = merge(written, bad)  # a planned file that was rejected: its reject row wins
    at = pc.index_in(rows.relpaths, value_set=listing.relpaths)
    if at.null_count:
        raise DatasetError("a converted file is not in the listing it came from")  # pragma: no cover
    positions = at.to_numpy(zero_copy_only=False)
    table = rows.table.set_column(1, "size", pa.array(listing.sizes[positions]))
    stamps = listing.stamps.take(at) if listing.stamps is not None else pa.nulls(len(rows), pa.string())
    return FileIndex(table.set_column(2, "stamp", stamps))


def rewrites(plan: AppendPlan, run: str, data_url: str) -> list[Rewrite]:
    """One `Rewrite` per parent shard that holds a record to drop, into run folder `run`."""
    dropped = plan.index.take(plan.dropped_at)
    by_shard: dict[str, set[str]] = {}
    for relpath, shard in zip(dropped.relpaths.to_pylist(), dropped.column("shard").to_pylist()):
        by_shard.setdefault(shard, set()).add(relpath)
    folder = DatasetFolder(data_url)
    jobs = []
    for number, shard in enumerate(sorted(by_shard)):
        target = f"{run}/rewritten-{run.rsplit('-', 1)[-1]}-{number:05d}-{posixpath.basename(shard)}"
        compression = "gzip" if shard.endswith(".gz") else "none"
        drop = frozenset(by_shard[shard])
        jobs.append(Rewrite(shard, folder.file_url(shard), target, folder.file_url(target), compression, drop))
    return jobs


def rewrite_shards(spark: SparkSession, jobs: list[Rewrite]) -> list[Rewritten]:
    """Copy each shard without its dropped records, one Spark task per shard.

    Raises:
        DatasetError: a shard does not hold a record the index puts in it.
    """
    if not jobs:
        return []
    sc = spark.sparkContext
    sc.setJobDescription(f"convert_images --on-change replace: {len(jobs)} shards copied without their dropped records")
    done: list[Rewritten] = sc.parallelize(jobs, len(jobs)).map(rewrite_shard).collect()
    for job, result in zip(jobs, done):
        missing = sorted(job.drop - set(result.dropped))
        if missing or len(result.dropped) != len(job.drop):
            raise DatasetError(
                f"shard {job.shard} does not hold the record of {missing[0] if missing else 'a file'} as the file "
                "index says; nothing was committed: convert the dataset again with --mode overwrite"
            )
    return done


def appended_manifest(
    parent: Manifest,
    run: Manifest,
    run_folder: str,
    labels: tuple[str, ...],
    rewritten: list[Rewritten],
    index: FileIndex,
) -> Manifest:
    """Version N+1: the parent's shards (rewritten ones replaced, emptied ones gone), then this run's (their paths
    relative to `run_folder` in `run`), label counts merged exactly, counts over `index` (the merged file index).

    Raises:
        DatasetError: the index and the shards disagree on the number of records.
    """
    moved = {r.shard: r for r in rewritten}
    splits = {}
    for name in sorted(set(parent.splits) | set(run.splits)):
        old = parent.splits.get(name, SplitInfo(0, ()))
        new = run.splits.get(name, SplitInfo(0, ()))
        counts: Counter[str] = Counter({label: 0 for label in labels})
        counts.update(old.label_counts)
        counts.update(new.label_counts)
        files: list[ShardFile] = []
        for f in old.files:
            if f.path not in moved:
                files.append(f)
                continue
            result = moved[f.path]
            counts.subtract(result.dropped_labels)
            if result.target is not None:
                files.append(ShardFile(result.target, result.num_records, result.num_bytes, result.index))
        files += [f.under(run_folder) for f in new.files]
        if not files:
            continue  # every record of the split was dropped
        splits[name] = SplitInfo(
            num_records=sum(f.num_records for f in files),
            files=tuple(files),
            label_counts={label: counts[label] for label in labels},
        )
    num_records = sum(split.num_records for split in splits.values())
    if index.num_written() != num_records:
        raise DatasetError(
            f"the file index lists {index.num_written()} written files but the shards hold {num_records} records; "
            "nothing was committed: convert the dataset again with --mode overwrite"
        )
    rejected = index.reasons()
    converted = Counter(parent.num_converted_formats)
    converted.update(run.num_converted_formats)
    return dataclasses.replace(
        run,
        labels=labels,
        splits=splits,
        num_files_seen=num_records + sum(rejected.values()),
        num_rejected=rejected,
        num_converted_formats=dict(sorted(converted.items())),
    )
