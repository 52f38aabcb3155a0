"""`convert_images`: label folders → sharded TFRecord splits, a manifest and a rejected report."""

from __future__ import annotations

import json
import os
import posixpath
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from functools import partial

from fsspec.implementations.local import LocalFileSystem
from pyspark.sql import SparkSession

from conversion.discovery import Discovery, Skip, discover
from conversion.errors import ConversionError
from conversion.listing import filesystem, list_files
from conversion.manifest import FeatureInfo, Manifest, ShardFile, SplitInfo
from conversion.options import ImageConvertOptions
from conversion.plan import ShardPlan, group_into_tasks, plan_shards
from conversion.records import IMAGE_FEATURES
from conversion.shard_writer import ShardJob, ShardResult, run_task, warm_up
from conversion.staging import MANIFEST, SUCCESS, Staging

# Test-only: the first attempt of the first shard task fails after this many records.
FAULT_CONF = "spark.tfrecordpipe.test.failOnceAfterRecords"
REJECTED_REPORT = "_rejected/rejected.jsonl"
TASKS_PER_CORE = 2  # enough to even out uneven shards, few enough to keep per-task overhead low
# Reasons given before any image is read: they are reported but not counted as bad images.
SKIP_REASONS = ("hidden", "outside_label_folder", "unsupported_extension")


@dataclass(frozen=True)
class ConversionSummary:
    output: str
    records: dict[str, int]
    shards: dict[str, int]
    rejected: dict[str, int]
    bytes_written: int
    input_bytes: int
    num_files_seen: int
    retried_shards: int
    timings: dict[str, float]

    def text(self) -> str:
        total = sum(self.records.values())
        seconds = self.timings["total_s"]
        lines = [
            f"Converted {total} images into {self.output} in {seconds:.1f} s ({total / max(seconds, 1e-9):.0f} images/s)"
        ]
        lines += [f"  {split}: {n} records in {self.shards[split]} shards" for split, n in sorted(self.records.items())]
        rejected = ", ".join(f"{reason} {n}" for reason, n in sorted(self.rejected.items())) or "none"
        lines.append(f"  rejected: {rejected}  (of {self.num_files_seen} files seen; see {REJECTED_REPORT})")
        lines.append(f"  written: {self.bytes_written / 1e6:.1f} MB from {self.input_bytes / 1e6:.1f} MB read")
        if self.retried_shards:
            lines.append(f"  {self.retried_shards} shard tasks failed once and were retried")
        return "\n".join(lines)


def check_paths(input_url: str, output_url: str) -> None:
    """Refuse an output inside the input, and an input inside the output (overwrite would delete it).

    Raises:
        ConversionError: the two overlap.
    """
    in_fs, in_path = filesystem(input_url)
    out_fs, out_path = filesystem(output_url)
    if type(in_fs) is type(out_fs):
        real = os.path.realpath if isinstance(in_fs, LocalFileSystem) else posixpath.normpath
        output, source = real(out_path), real(in_path)
        if output == source or output.startswith(source.rstrip("/") + "/"):
            raise ConversionError(f"output {output_url} lies inside input {input_url}; choose an --output outside it")
        if source.startswith(output.rstrip("/") + "/"):
            raise ConversionError(f"input {input_url} lies inside output {output_url}; choose an --output elsewhere")


def _run_tasks(spark: SparkSession, plans: list[ShardPlan], job: ShardJob) -> list[ShardResult]:
    sc = spark.sparkContext
    tasks = group_into_tasks(plans, TASKS_PER_CORE * sc.defaultParallelism)
    sc.setJobDescription(f"convert_images: {len(plans)} shards in {len(tasks)} tasks")
    return sc.parallelize(tasks, len(tasks)).mapPartitionsWithIndex(partial(run_task, job)).collect()


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
    options: ImageConvertOptions, found: Discovery, results: list[ShardResult], rejects: list[Skip]
) -> Manifest:
    splits = {}
    for split in sorted({r.split for r in results}):
        mine = sorted((r for r in results if r.split == split), key=lambda r: r.index)
        counts: Counter[int] = Counter()
        for r in mine:
            counts.update(r.label_counts)
        splits[split] = SplitInfo(
            num_records=sum(r.num_records for r in mine),
            files=tuple(ShardFile(r.name, r.num_records, r.num_bytes) for r in mine),
            label_counts={found.labels[i]: counts[i] for i in range(len(found.labels))},
        )
    option_values = asdict(options)
    option_values.pop("input"), option_values.pop("output")
    return Manifest(
        kind="images",
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        source_root=options.input,
        options=option_values,
        labels=found.labels,
        features={
            name: FeatureInfo(dtype, (), "fixed", spark_type) for name, (dtype, spark_type) in IMAGE_FEATURES.items()
        },
        splits=splits,
        compression=options.compression,
        num_files_seen=found.num_files_seen,
        num_rejected=dict(sorted(Counter(s.reason for s in rejects).items())),
    )


def convert_images(spark: SparkSession, options: ImageConvertOptions) -> ConversionSummary:
    """Convert `ROOT/<label>/**/<image>` into `<split>-NNNNN-of-MMMMM.tfrecord` shards.

    The output folder appears only when complete: shards, `_rejected/`, `manifest.json` and
    `_SUCCESS` are written to a staging folder that is then renamed into place.

    Raises:
        ConversionError: bad input or options, or more rejects than `max_reject_fraction`.
    """
    start = time.perf_counter()
    check_paths(options.input, options.output)
    staging = Staging(options.output)
    staging.begin(options.mode)
    try:
        summary = _convert(spark, options, staging, start)
    except RejectLimitExceeded:
        raise  # the staging folder keeps the rejected report (and nothing else) for the user to read
    except BaseException:
        staging.abort()
        raise
    return summary


class RejectLimitExceeded(ConversionError):
    """More images were rejected than `--max-reject-fraction` allows."""


def _convert(spark: SparkSession, options: ImageConvertOptions, staging: Staging, start: float) -> ConversionSummary:
    warming = _start_workers(spark)
    found = discover(list_files(options.input), options.labels, options.split_from_folders)
    plans = plan_shards(found.candidates, found.labels, options)
    timings = {"listing_planning_s": time.perf_counter() - start}
    warming.join()
    fault = spark.conf.get(FAULT_CONF, None)
    job = ShardJob(options.input, staging.url(), found.labels, options.transform, int(fault) if fault else None)
    results = _run_tasks(spark, plans, job)
    timings["work_s"] = time.perf_counter() - start - timings["listing_planning_s"]
    commit_start = time.perf_counter()
    rejects = list(found.skipped) + [s for r in results for s in r.rejects]
    staging.write_text(REJECTED_REPORT, _rejected_lines(rejects))
    staging.keep_attempts({r.tmp_path: r.name for r in results})
    bad = [s for s in rejects if s.reason not in SKIP_REASONS]
    images = len(found.candidates) + sum(1 for s in found.skipped if s.reason == "unknown_label")
    if len(bad) > options.max_reject_fraction * images:
        for r in results:
            staging.fs.rm(f"{staging.path}/{r.name}")
        raise RejectLimitExceeded(
            f"{len(bad)} of {images} images rejected ({len(bad) / images:.1%}) > --max-reject-fraction "
            f"{options.max_reject_fraction}; nothing was written; see {staging.url()}/{REJECTED_REPORT}"
        )
    manifest = _manifest(options, found, results, rejects)
    manifest.check()
    if manifest.num_records == 0:
        raise ConversionError(f"no image in {options.input} could be converted; see the rejected reasons")
    staging.write_text(MANIFEST, manifest.to_json())
    staging.write_text(SUCCESS, "")
    staging.commit()
    timings["commit_s"] = time.perf_counter() - commit_start
    timings["total_s"] = time.perf_counter() - start
    return ConversionSummary(
        output=options.output,
        records={name: split.num_records for name, split in manifest.splits.items()},
        shards={name: len(split.files) for name, split in manifest.splits.items()},
        rejected=manifest.num_rejected,
        bytes_written=sum(r.num_bytes for r in results),
        input_bytes=sum(r.input_bytes for r in results),
        num_files_seen=found.num_files_seen,
        retried_shards=sum(1 for r in results if r.attempt > 0),
        timings=timings,
    )
