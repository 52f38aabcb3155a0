"""`convert_images`: label folders → sharded TFRecord splits, a manifest and a rejected report."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from functools import partial

import numpy as np
from pyspark.sql import SparkSession

from conversion.faults import fault_from_conf, pause_from_conf
from conversion.images.append import (
    AppendPlan,
    appended_manifest,
    check_same_conversion,
    fixed_labels,
    list_input,
    merged_labels,
    parent_index,
    plan_append,
    rewrite_shards,
    rewrites,
    run_index,
)
from conversion.images.discovery import LABEL_REASONS, SKIP_REASONS, Discovery, Skip, discover
from conversion.images.options import ImageConvertOptions
from conversion.images.plan import ShardPlan, group_into_tasks, plan_shards
from conversion.images.task_plans import TaskPlan, remove_task_plans, write_task_plans
from conversion.images.writer import ShardJob, ShardResult, run_task, warm_up
from conversion.publish import RunFolder, publish, speculative, staged_output
from dataset.features import IMAGE_ORIENTATION
from dataset.file_index import FileIndex, merge, remap_shards, write_index
from dataset.layout import REJECTED_REPORT
from dataset.manifest import (
    IMAGE_KEY_FEATURE,
    IMAGE_LABEL_FEATURE,
    Feature,
    Manifest,
    ShardFile,
    SplitInfo,
    image_features,
)
from dataset.progress import files_line, ticking
from dataset.versions import Version, public_url

WARNINGS_SHOWN = 5  # distinct Pillow warnings printed in the summary (each with its count and a first file)
TASKS_PER_CORE = 2  # enough to even out uneven shards, few enough to keep per-task overhead low


@dataclass(frozen=True)
class ConversionSummary:
    output: str
    records: dict[str, int]
    shards: dict[str, int]
    rejected: dict[str, int]
    converted: dict[str, int]
    bytes_written: int
    input_bytes: int
    num_files_seen: int
    retried_shards: int
    timings: dict[str, float]
    turned: dict[str, int] = field(default_factory=dict)  # format → files turned upright by their EXIF orientation
    first_frame_only: dict[str, int] = field(default_factory=dict)  # format → multi-frame files (first kept)
    warnings: tuple[tuple[str, str], ...] = ()  # (relpath, Pillow's warning) of the files written
    version: int | None = None  # the version this run committed (None: it committed nothing)
    notes: tuple[str, ...] = ()  # appends: what the version is made of, new labels, kept changes
    nothing_new: str = ""  # an append that found nothing to do: the one line it prints

    def _warning_lines(self) -> list[str]:
        """Pillow's warnings on files that were written, counted by message (those of rejected files are in the
        rejected report)."""
        if not self.warnings:
            return []
        counts = Counter(text for _, text in self.warnings)
        first = {}
        for relpath, text in self.warnings:
            first.setdefault(text, relpath)
        lines = [f"  Pillow warned on {len({p for p, _ in self.warnings})} files written:"]
        for text, n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:WARNINGS_SHOWN]:
            lines.append(f"    {n} x {text} (first: {first[text]})")
        if len(counts) > WARNINGS_SHOWN:
            lines.append(f"    and {len(counts) - WARNINGS_SHOWN} other warnings")
        return lines

    def text(self) -> str:
        if self.nothing_new:
            return self.nothing_new
        total = sum(self.records.values())
        seconds = self.timings["total_s"]
        lines = [
            f"Converted {total} images into {self.output} in {seconds:.1f} s ({total / max(seconds, 1e-9):.0f} images/s)"
        ]
        lines += self.notes
        lines += [f"  {split}: {n} records in {self.shards[split]} shards" for split, n in sorted(self.records.items())]
        rejected = ", ".join(f"{reason} {n}" for reason, n in sorted(self.rejected.items())) or "none"
        lines.append(f"  rejected: {rejected}  (of {self.num_files_seen} files seen; see {REJECTED_REPORT})")
        if self.converted:
            formats = ", ".join(f"{fmt} {n}" for fmt, n in sorted(self.converted.items()))
            lines.append(f"  stored as PNG (training cannot decode the original): {formats}")
        if self.turned:
            formats = ", ".join(f"{fmt} {n}" for fmt, n in sorted(self.turned.items()))
            lines.append(f"  turned upright by their EXIF orientation: {formats}")
        if self.first_frame_only:
            formats = ", ".join(f"{fmt} {n}" for fmt, n in sorted(self.first_frame_only.items()))
            lines.append(f"  several frames or pages, the first stored: {formats}")
        lines += self._warning_lines()
        lines.append(f"  written: {self.bytes_written / 1e6:.1f} MB from {self.input_bytes / 1e6:.1f} MB read")
        if self.retried_shards:
            lines.append(f"  {self.retried_shards} shard tasks failed once and were retried")
        return "\n".join(lines)


def _run_tasks(
    spark: SparkSession, plans: list[ShardPlan], job: ShardJob, progress_every: float | None, listing_rejects: int
) -> list[ShardResult]:
    """Write the shards in Spark tasks, each handed its shards by reference (`conversion.images.task_plans`); the
    task files go before the commit (a failed run's go with the rest of what it wrote)."""
    sc = spark.sparkContext
    tasks = group_into_tasks(plans, TASKS_PER_CORE * sc.defaultParallelism)
    results = _run_task_plans(spark, write_task_plans(tasks, job.staging_url), job, progress_every, listing_rejects)
    remove_task_plans(job.staging_url)
    return results


def _run_task_plans(
    spark: SparkSession, tasks: list[TaskPlan], job: ShardJob, progress_every: float | None, listing_rejects: int
) -> list[ShardResult]:
    sc = spark.sparkContext
    plans = sum(task.num_shards for task in tasks)
    sc.setJobDescription(f"convert_images: {plans} shards in {len(tasks)} tasks")
    counters = (sc.accumulator(0), sc.accumulator(0), sc.accumulator(0))  # files, bytes read, rejects
    total = sum(task.num_files for task in tasks)

    def line(elapsed: float) -> str:
        files, read, rejected = (counter.value for counter in counters)
        return files_line(files, total, read, listing_rejects + rejected, elapsed)

    with ticking(progress_every, line):  # the driver's progress lines, from what finished tasks counted
        return (
            sc.parallelize(tasks, len(tasks))
            .mapPartitionsWithIndex(partial(run_task, job, counters=counters))
            .collect()
        )


def _start_workers(spark: SparkSession) -> threading.Thread:
    """Start the executors' Python workers (and their imports) while the driver lists files."""
    sc = spark.sparkContext
    slots = sc.defaultParallelism
    thread = threading.Thread(target=lambda: sc.parallelize(range(slots), slots).foreach(warm_up), daemon=True)
    thread.start()
    return thread


def _rejected_lines(skips: list[Skip]) -> str:
    return "".join(
        json.dumps({"path": s.relpath, "reason": s.reason, "detail": s.detail}, ensure_ascii=False) + "\n"
        for s in sorted(skips, key=lambda s: s.relpath)
    )


def _manifest(
    options: ImageConvertOptions,
    found: Discovery,
    labels: tuple[str, ...],
    results: list[ShardResult],
    rejects: list[Skip],
) -> Manifest:
    splits = {}
    for split in sorted({r.split for r in results}):
        mine = sorted((r for r in results if r.split == split), key=lambda r: r.index)
        counts: Counter[int] = Counter()
        for r in mine:
            counts.update(r.label_counts)
        splits[split] = SplitInfo(
            num_records=sum(r.num_records for r in mine),
            files=tuple(ShardFile(r.name, r.num_records, r.num_bytes, r.record_index) for r in mine),
            label_counts={labels[i]: counts[i] for i in range(len(labels))},
        )
    option_values = asdict(options)
    option_values.pop("input"), option_values.pop("output")
    option_values.pop("read_concurrency")  # how it was read, not what was written
    return Manifest(
        kind="images",
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        source_root=options.input,
        options=option_values,
        labels=labels,
        features=_features(options),
        splits=splits,
        compression=options.compression,
        num_files_seen=found.num_files_seen,
        num_rejected=dict(sorted(Counter(s.reason for s in rejects).items())),
        num_converted_formats=_counted(r.converted for r in results),
        label_feature=IMAGE_LABEL_FEATURE,
        key_feature=IMAGE_KEY_FEATURE,
    )


def _features(options: ImageConvertOptions) -> dict[str, Feature]:
    """Every image record's features; with --keep-orientation, image/orientation too."""
    features = image_features()
    if options.transform.keep_orientation:
        features[IMAGE_ORIENTATION] = Feature("int64", (), "fixed", "bigint")
    return dict(sorted(features.items()))


def convert_images(
    spark: SparkSession, options: ImageConvertOptions, progress_every: float | None = None
) -> ConversionSummary:
    """Convert `ROOT/<label>/**/<image>` into `<split>-NNNNN-of-MMMMM.tfrecord` shards.

    Each run writes into a folder of its own and commits a new version of the dataset (see `conversion.publish`). With `progress_every`, a progress
    line (`dataset.progress.files_line`) goes to stderr every that many seconds while the shards are written.

    Raises:
        PipelineError: bad input or options (`StorageError`, `ConversionError`), or more rejects
            than `max_reject_fraction` (`RejectLimitExceeded`).
    """
    start = time.perf_counter()
    with staged_output(options.input, options.output, options.mode) as staging:
        return _convert(spark, options, staging, start, progress_every)


def _convert(
    spark: SparkSession, options: ImageConvertOptions, staging: RunFolder, start: float, progress_every: float | None
) -> ConversionSummary:
    parent = staging.parent if options.mode == "append" else None
    if parent is not None:  # refused before any work: options that would write other records, ids that would move
        check_same_conversion(parent, options)
        merged_labels(parent, (), fixed_labels(parent, options))
    warming = _start_workers(spark)
    try:
        return _convert_listed(spark, options, staging, start, progress_every, parent, warming)
    finally:
        warming.join()  # a run that stops early must not leave a Spark job starting behind it


def _convert_listed(
    spark: SparkSession,
    options: ImageConvertOptions,
    staging: RunFolder,
    start: float,
    progress_every: float | None,
    parent: Version | None,
    warming: threading.Thread,
) -> ConversionSummary:
    listing, prefixes = list_input(options, parent is not None)
    listed = time.perf_counter()
    notes: list[str] = []
    plan = None
    if parent is not None:
        index, built = parent_index(spark, options.output, parent)
        if built:
            notes.append(
                f"  version {parent.number} has no file index: built one from its {index.num_written()} records' "
                "filenames and its rejected report (sizes and stamps unknown: those files count as unchanged)"
            )
        plan = plan_append(listing, index, options.on_change, options.retry_rejected, prefixes)
        if plan.nothing_new:
            return _nothing_new(options, parent.number, plan, start)
        listing = listing.take(plan.convert)
    compared = time.perf_counter()
    fixed = fixed_labels(parent, options) if parent is not None else options.labels
    found = discover(listing, fixed, options.split_from_folders, allow_empty=parent is not None)
    labels = merged_labels(parent, found.labels, fixed) if parent is not None else found.labels
    plans = plan_shards(found.candidates, labels, options, staging.token if parent is not None else "")
    timings = {
        "listing_s": listed - start,
        "index_s": compared - listed,
        "listing_planning_s": time.perf_counter() - start,
    }
    warming.join()
    final_names = staging.final_names and not speculative(spark)  # speculative twins would race on one name
    job = ShardJob(
        options.input, staging.url(), labels, options.transform, fault_from_conf(spark), final_names,
        options.read_concurrency, pause_from_conf(spark),
    )  # fmt: skip
    listing_rejects = sum(1 for s in found.skipped if s.reason not in SKIP_REASONS)
    results = _run_tasks(spark, plans, job, progress_every, listing_rejects) if plans else []
    rewritten = rewrite_shards(spark, rewrites(plan, staging.run, options.output)) if plan is not None else []
    timings["work_s"] = time.perf_counter() - start - timings["listing_planning_s"]
    timings["tasks_cpu_s"] = sum(r.cpu_s for r in results)  # the shard tasks' own CPU (benchmarks/convert_images)
    commit_start = time.perf_counter()
    rejects = list(found.skipped) + [s for r in results for s in r.rejects]
    staging.write_text(REJECTED_REPORT, _rejected_lines(rejects))
    staging.keep_attempts(
        {r.tmp_path: r.name for r in results}
        | {r.record_index_tmp: r.record_index for r in results if r.record_index_tmp and r.record_index}
    )
    bad = sum(1 for s in rejects if s.reason not in SKIP_REASONS)
    images = len(found.candidates) + sum(1 for s in found.skipped if s.reason in LABEL_REASONS)
    run_manifest = _manifest(options, found, labels, results, rejects)
    if fixed is not None:  # a fixed list the parent had stays fixed for the appends after this one
        run_manifest = dataclasses.replace(run_manifest, options={**run_manifest.options, "labels": list(fixed)})
    index = run_index(listing, plans, {(r.split, r.index): staging.relpath(r.name) for r in results}, rejects)
    if plan is None or parent is None:
        manifest = dataclasses.replace(run_manifest, file_index=write_index(options.output, staging.run, index))
        version = publish(staging, manifest, bad, images, options.max_reject_fraction, "images")
    else:
        index = merge(_carried(plan, rewritten), index)
        manifest = appended_manifest(parent.manifest, run_manifest, staging.run, labels, rewritten, index)
        manifest = dataclasses.replace(manifest, file_index=write_index(options.output, staging.run, index))
        version = publish(
            staging, manifest, bad, images, options.max_reject_fraction, "images", operation="append", in_run=False
        )
        notes = _append_notes(parent, version.number, run_manifest, manifest, plan, notes)
    timings["commit_s"] = time.perf_counter() - commit_start
    timings["total_s"] = time.perf_counter() - start
    return ConversionSummary(
        output=options.output,
        records={name: split.num_records for name, split in run_manifest.splits.items()},
        shards={name: len(split.files) for name, split in run_manifest.splits.items()},
        rejected=run_manifest.num_rejected,
        converted=run_manifest.num_converted_formats,
        bytes_written=sum(r.num_bytes for r in results),
        input_bytes=sum(r.input_bytes for r in results),
        num_files_seen=len(listing),
        retried_shards=sum(1 for r in results if r.attempt > 0),
        timings=timings,
        turned=_counted(r.turned for r in results),
        first_frame_only=_counted(r.first_frame_only for r in results),
        warnings=tuple(sorted(w for r in results for w in r.warnings)),
        version=version.number,
        notes=tuple(notes),
    )


def _carried(plan: AppendPlan, rewritten: list) -> FileIndex:
    """The parent's index rows that stay, their shard paths following the rewritten shards."""
    kept = plan.index.drop(np.union1d(plan.dropped_at, plan.forgotten_at))
    return remap_shards(kept, {r.shard: r.target for r in rewritten if r.target is not None})


def _nothing_new(options: ImageConvertOptions, number: int, plan: AppendPlan, start: float) -> ConversionSummary:
    root = options.input.rstrip("/") + (f"/{options.list_prefix.strip('/')}" if options.list_prefix else "")
    line = f"nothing new under {public_url(root)} since version {number}; nothing committed"
    kept = _kept_line(plan)
    return ConversionSummary(
        output=options.output, records={}, shards={}, rejected={}, converted={}, bytes_written=0, input_bytes=0,
        num_files_seen=0, retried_shards=0, timings={"total_s": time.perf_counter() - start},
        nothing_new=line + (f"\n{kept.strip()}" if kept else ""),
    )  # fmt: skip


def _kept_line(plan: AppendPlan) -> str:
    if not plan.kept_changed and not plan.kept_deleted:
        return ""
    return (
        f"  kept the records of {plan.kept_changed} changed and {plan.kept_deleted} deleted source files as they "
        "were (--on-change keep); --on-change replace rewrites the shards that hold them"
    )


def _append_notes(
    parent: Version, number: int, run: Manifest, manifest: Manifest, plan: AppendPlan, notes: list[str]
) -> list[str]:
    """The summary lines of an append: the version it made, new labels, what happened to changed files."""
    per_split = ", ".join(f"{name} {split.num_records}" for name, split in sorted(manifest.splits.items()))
    lines = [f"  version {number} = version {parent.number} + {run.num_records} new records; records now: {per_split}"]
    lines += notes
    first = len(parent.manifest.labels)
    new_labels = manifest.labels[first:]
    if new_labels:
        ids = ", ".join(f"{label}={first + i}" for i, label in enumerate(new_labels))
        lines.append(f"  new labels, numbered after version {parent.number}'s: {ids}")
    if plan.replaced:
        lines.append(f"  replaced the records of {plan.replaced} changed or deleted source files (--on-change replace)")
    kept = _kept_line(plan)
    return lines + ([kept] if kept else [])


def _counted(counts: Iterable[dict[str, int]]) -> dict[str, int]:
    return dict(sorted(sum((Counter(c) for c in counts), Counter()).items()))
