"""Benchmark: appending what is new against converting everything again (issue 18), in one warm SparkSession.

    python -m benchmarks.incremental                    # every section at the issue's sizes (tens of minutes)
    python -m benchmarks.incremental --smoke            # tiny sizes, every code path, about a minute
    python -m benchmarks.incremental --sections photos,small --photos 5000

The library calls run in one SparkSession started first (its start-up, which both sides would pay, is printed
apart and counted nowhere). Every step prints its time split as the conversion reports it (listing, index
comparison, conversion, commit). The data is generated as `benchmarks.convert_images` does (seeded); a "store"
folder grows by hard links from a pool of generated files, as a bucket grows by uploads.

1. photos: a dataset of `--photos` ~100 KB JPEGs (resized to 224x224, JPEG q90), then `--new-photos` more arrive:
   the append against a full conversion of all of them. Target: append >= 20x faster.
2. small: `--small-files` 64x64 PNGs (header check), then `--new-small` more: the append against listing the tree
   plus converting the new files as a dataset of their own plus 1 s (the target: no more than that).
3. scale: the same new files appended to `--small-base` files: the two appends differ by no more than the difference
   of their listings + 20 % of the smaller append.
4. compact: a dataset of `--compact-shards` small shards per split compacted into shards of the target size, then
   `versions --vacuum --keep 1`: times and bytes.
5. s3: section 1 on S3Proxy 4.0.0 (filesystem store) on loopback behind a proxy adding `--delay-ms` to every request. Target: >= 10x.

Figures go to `<workdir>/results.json`.
"""

from __future__ import annotations

if not __package__:  # run by path, `python benchmarks/incremental.py`: import as `-m` does
    import _repo_root  # noqa: F401

import argparse
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.convert_images import Workload, ensure_data, generate_photo, generate_small
from benchmarks.harness import (
    Table,
    Target,
    add_run_arguments,
    benchmark_run,
    ratio,
    seconds_cell,
    start_spark,
    timed,
    write_results,
)
from conversion.compact import CompactOptions, compact
from conversion.images.convert import ConversionSummary, convert_images
from conversion.images.options import ImageConvertOptions, ImageTransform
from dataset.fs import list_files
from dataset.vacuum import plan_vacuum, vacuum
from dataset.versions import read_version
from jobs.spark_cli import add_spark_arguments

SECTIONS = ("photos", "small", "scale", "compact", "s3")
PHOTO_TRANSFORM = ImageTransform(resize=(224, 224), reencode="jpeg", jpeg_quality=90)
SMALL_TRANSFORM = ImageTransform(verify="header")
PHOTOS_TARGET = Target(">=", 20)
S3_TARGET = Target(">=", 10)
SMOKE = {"photos": 20, "new_photos": 2, "small_files": 100, "new_small": 10, "small_base": 40,
         "compact_shards": 4, "s3_photos": 10}  # fmt: skip


# --------------------------------------------------------------------------- data: a pool and stores that grow


@dataclass(frozen=True)
class Pool:
    """Generated files `class_LL/img_NNNNNN.ext` (index 0..count-1) in `root`."""

    root: Path
    extension: str

    def relpath(self, index: int) -> str:
        return f"class_{index % 10:02d}/img_{index:06d}{self.extension}"


def pool(args: argparse.Namespace, name: str, count: int) -> Pool:
    """The generated pool of `count` photos or small PNGs (reused while complete)."""
    workload = Workload(name, name, count, PHOTO_TRANSFORM if name == "photos" else SMALL_TRANSFORM,
                        generate_photo if name == "photos" else generate_small)  # fmt: skip
    images, _ = ensure_data(workload, args.workdir / f"pool-{name}-{count}", args.cores)
    return Pool(images, ".jpg" if name == "photos" else ".png")


def grow(source: Pool, store: Path, indices: range) -> None:
    """Make files `indices` of the pool appear in `store` (hard links: instant, the bytes are the pool's)."""
    for index in indices:
        target = store / source.relpath(index)
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            os.link(source.root / source.relpath(index), target)


def fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


# --------------------------------------------------------------------------- one timed conversion


@dataclass(frozen=True)
class Step:
    """One timed conversion: the seconds, the records the version holds, the files it converted, its timings."""

    seconds: float
    version: int
    records: int
    converted: int
    timings: dict[str, float]

    def split_text(self) -> str:
        """`(v2: 200 files converted; listing 0.31 s, index 0.02 s, planning 0.01 s, conversion 1.30 s, commit 0.03 s)`."""
        t = self.timings
        planning = t["listing_planning_s"] - t.get("listing_s", 0.0) - t.get("index_s", 0.0)
        parts = {"listing": t.get("listing_s"), "index comparison": t.get("index_s"), "planning": planning,
                 "conversion": t["work_s"], "commit": t["commit_s"]}  # fmt: skip
        text = ", ".join(f"{name} {value:.2f} s" for name, value in parts.items() if value is not None)
        return f"(v{self.version}: {self.converted:,} files converted; {text})"


def convert(spark: Any, source: str, output: str, mode: str, transform: ImageTransform, shards: int | None) -> Step:
    options = ImageConvertOptions(input=source, output=output, mode=mode, transform=transform, num_shards=shards)
    with timed() as timing:
        summary: ConversionSummary = convert_images(spark, options, None)
    version = read_version(output)
    converted = sum(summary.records.values()) + sum(summary.rejected.values())
    return Step(timing.seconds, version.number, version.manifest.num_records, converted, dict(summary.timings))


def listing_seconds(url: str) -> float:
    with timed() as timing:
        list_files(url)
    return timing.seconds


# --------------------------------------------------------------------------- sections


def photos_section(spark: Any, args: argparse.Namespace, root_of: Any, title: str, count: int, target: Target,
                   grow_to: Any) -> tuple[Table, dict[str, Any]]:  # fmt: skip
    """A dataset of `count` photos, `--new-photos` more, the append against a full conversion of all."""
    store, dataset, full = root_of("store"), root_of("dataset"), root_of("full")
    grow_to(range(count))
    first = convert(spark, store, dataset, "overwrite", PHOTO_TRANSFORM, None)
    grow_to(range(count, count + args.new_photos))
    append = convert(spark, store, dataset, "append", PHOTO_TRANSFORM, None)
    whole = convert(spark, store, full, "overwrite", PHOTO_TRANSFORM, None)
    if append.records != whole.records:
        raise RuntimeError(f"the append holds {append.records} records, the full conversion {whole.records}")
    speedup = ratio(whole.seconds, append.seconds)
    table = Table(title)
    table.row("version 1 (set-up)", seconds_cell(first.seconds), first.split_text())
    table.row("append", seconds_cell(append.seconds), append.split_text())
    table.row("full conversion", seconds_cell(whole.seconds), whole.split_text())
    table.figure("ratio full/append", speedup, target, "(>1: the append is faster)")
    return table, {"first": first.__dict__, "append": append.__dict__, "full": whole.__dict__,
                   "ratio": target.as_dict(speedup)}  # fmt: skip


def local_photos(spark: Any, args: argparse.Namespace) -> tuple[Table, dict[str, Any]]:
    photos = pool(args, "photos", args.photos + args.new_photos)
    base = args.workdir / "photos"
    fresh(base)
    return photos_section(
        spark, args, lambda name: str(base / name),
        f"photos, local disk: {args.photos:,} JPEGs, then {args.new_photos:,} new; 224x224 JPEG q90",
        args.photos, PHOTOS_TARGET, lambda indices: grow(photos, base / "store", indices),
    )  # fmt: skip


def small_section(spark: Any, args: argparse.Namespace) -> tuple[Table, dict[str, Any], dict[str, Any]]:
    """Sections small and scale: the append of `--new-small` PNGs to `--small-files` and to `--small-base`."""
    big, base_n, new = args.small_files, args.small_base, args.new_small
    pngs = pool(args, "small", big + new)
    base = fresh(args.workdir / "small")
    runs: dict[int, dict[str, Any]] = {}
    for count in (big, base_n):
        store, dataset = base / f"store-{count}", str(base / f"dataset-{count}")
        grow(pngs, store, range(count))
        convert(spark, str(store), dataset, "overwrite", SMALL_TRANSFORM, None)
        grow(pngs, store, range(big, big + new))  # the same new files arrive in both stores
        listing = listing_seconds(str(store))
        runs[count] = {"listing_s": listing, "append": convert(spark, str(store), dataset, "append", SMALL_TRANSFORM, None)}
    alone = base / "new-only"
    grow(pngs, alone, range(big, big + new))
    own = convert(spark, str(alone), str(base / "new-only-dataset"), "overwrite", SMALL_TRANSFORM, None)

    append, listing = runs[big]["append"], runs[big]["listing_s"]
    bound = listing + own.seconds + 1.0
    small = Table(f"small files: {big:,} PNG 64x64, then {new:,} new; header check")
    small.row("append", seconds_cell(append.seconds), append.split_text())
    small.row("listing the tree", seconds_cell(listing), f"({big + new:,} files, dataset.fs.list_files)")
    small.row("new files alone", seconds_cell(own.seconds), f"(a dataset of the {new:,} new files) {own.split_text()}")
    small.figure("append - bound", append.seconds - bound, Target("<=", 0.0),
                 f"(bound = listing + new files alone + 1 s = {bound:.2f} s)")  # fmt: skip
    small_figures = {"append": append.__dict__, "listing_s": listing, "new_alone": own.__dict__, "bound_s": bound,
                     "target": Target("<=", bound).as_dict(append.seconds)}  # fmt: skip

    small_append = runs[base_n]["append"]
    grows = append.seconds - small_append.seconds
    allowed = (listing - runs[base_n]["listing_s"]) + 0.2 * small_append.seconds
    scale = Table(f"cost follows the new files: {new:,} new appended to {base_n:,} and to {big:,}")
    for count in (base_n, big):
        run = runs[count]
        scale.row(f"append to {count:,}", seconds_cell(run["append"].seconds),
                  f"listing {run['listing_s']:.2f} s {run['append'].split_text()}")  # fmt: skip
    scale.figure("difference - allowed", grows - allowed, Target("<=", 0.0),
                 f"(difference {grows:.2f} s; allowed = listing difference + 20 % of the smaller append = {allowed:.2f} s)")  # fmt: skip
    scale_figures = {str(k): {"listing_s": v["listing_s"], "append": v["append"].__dict__} for k, v in runs.items()}
    scale_figures |= {"difference_s": grows, "allowed_s": allowed, "target": Target("<=", allowed).as_dict(grows)}
    return small, small_figures, {"table": scale, "figures": scale_figures}


def compact_section(spark: Any, args: argparse.Namespace) -> tuple[Table, dict[str, Any]]:
    """A dataset of `--compact-shards` small shards per split, compacted; then vacuum keeping one version."""
    pngs = pool(args, "small", args.small_files + args.new_small)
    base = fresh(args.workdir / "compact")
    grow(pngs, base / "store", range(args.small_base))
    dataset = str(base / "dataset")
    convert(spark, str(base / "store"), dataset, "overwrite", SMALL_TRANSFORM, args.compact_shards)
    before = read_version(dataset).manifest
    with timed() as compaction:
        compact(dataset, CompactOptions())
    after = read_version(dataset).manifest
    shards_before = sum(len(s.files) for s in before.splits.values())
    shards_after = sum(len(s.files) for s in after.splits.values())
    size = sum(f.bytes for s in before.splits.values() for f in s.files)
    with timed() as vacuuming:
        plan = plan_vacuum(dataset, keep=1, min_age_s=0)
        vacuum(plan)
    table = Table(f"compaction: {shards_before} shards of {size / shards_before / 1e3:.0f} KB on average")
    table.row("compact", seconds_cell(compaction.seconds),
              f"({shards_before} shards -> {shards_after}, {size / 1e6:.1f} MB rewritten)")  # fmt: skip
    table.row("vacuum --keep 1", seconds_cell(vacuuming.seconds),
              f"({len(plan.files)} files, {plan.bytes / 1e6:.1f} MB deleted; versions kept: {plan.kept})")  # fmt: skip
    return table, {"compact_s": compaction.seconds, "shards_before": shards_before, "shards_after": shards_after,
                   "bytes": size, "vacuum_s": vacuuming.seconds, "vacuum_files": len(plan.files),
                   "vacuum_bytes": plan.bytes}  # fmt: skip


@contextmanager
def s3_store(args: argparse.Namespace) -> Iterator[tuple[Any, Any]]:
    """S3Proxy on loopback behind the latency proxy; this process and Spark's workers talk through the proxy."""
    from tests.latency_proxy import LatencyProxy
    from tests.s3server import s3_server

    with (
        s3_server("s3proxy", bucket="bucket", store="filesystem") as s3,  # 2 GB of photos: not in its 1 GB heap
        LatencyProxy("127.0.0.1", s3.port, delay_ms=args.delay_ms, process=True) as proxy,
    ):
        saved = dict(os.environ)
        os.environ.update(s3.env(proxy.endpoint))
        try:
            yield s3, proxy
        finally:
            os.environ.clear()
            os.environ.update(saved)


def s3_photos(spark: Any, args: argparse.Namespace, s3: Any) -> tuple[Table, dict[str, Any]]:
    from benchmarks.object_store import put_objects

    photos = pool(args, "photos", args.s3_photos + args.new_photos)

    def upload(indices: range) -> None:  # straight to the server, many in flight: the bucket grows
        put_objects(s3, {f"store/{photos.relpath(i)}": (photos.root / photos.relpath(i)).read_bytes() for i in indices})

    return photos_section(
        spark, args, lambda name: f"s3://{s3.bucket}/{name}",
        f"photos on S3Proxy 4.0.0 behind {args.delay_ms:g} ms a request: {args.s3_photos:,} JPEGs, then "
        f"{args.new_photos:,} new",
        args.s3_photos, S3_TARGET, upload,
    )  # fmt: skip


# --------------------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.incremental",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated, of {', '.join(SECTIONS)}")
    parser.add_argument("--photos", type=int, default=20_000, help="photos in the dataset before the append")
    parser.add_argument("--new-photos", type=int, default=200, help="photos that arrive")
    parser.add_argument("--small-files", type=int, default=100_000, help="small PNGs before the append")
    parser.add_argument("--new-small", type=int, default=1_000, help="small PNGs that arrive")
    parser.add_argument("--small-base", type=int, default=10_000, help="the smaller dataset of the scale section")
    parser.add_argument("--compact-shards", type=int, default=100, help="shards per split before compaction")
    parser.add_argument("--s3-photos", type=int, default=20_000, help="photos before the append, on S3")
    parser.add_argument("--delay-ms", type=float, default=20.0, help="added by the proxy to every S3 request")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="local[N] Spark cores")
    add_run_arguments(parser, "incremental", "generated data, datasets, results.json")
    add_spark_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    least = {"photos": 1, "new_photos": 1, "small_files": 1, "new_small": 1, "small_base": 1, "compact_shards": 2,
             "s3_photos": 1, "cores": 1}  # fmt: skip
    with benchmark_run(parser, argv, "incremental", SMOKE, least) as args:
        sections = [s.strip() for s in args.sections.split(",") if s.strip()]
        unknown = sorted(set(sections) - set(SECTIONS))
        if unknown:
            parser.error(f"--sections: unknown {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
        if args.small_base >= args.small_files:
            parser.error("--small-base must be smaller than --small-files")
        return measure(args, sections)


def measure(args: argparse.Namespace, sections: list[str]) -> int:
    results: dict[str, Any] = {}
    if "s3" in sections:
        with s3_store(args) as (s3, _):
            spark, start_s = start_spark(args, "benchmark_incremental", f"local[{args.cores}]")
            try:
                print(f"Spark {spark.version} on {args.master}, started in {start_s:.2f} s (counted nowhere)\n")
                table, results["s3"] = s3_photos(spark, args, s3)
                table.print()
            finally:
                spark.stop()
    local = [s for s in sections if s != "s3"]
    if local:
        spark, start_s = start_spark(args, "benchmark_incremental", f"local[{args.cores}]")
        print(f"Spark {spark.version} on {args.master}, started in {start_s:.2f} s (counted nowhere)\n", flush=True)
        results["spark_session_start_s"] = start_s
        try:
            if "photos" in local:
                table, results["photos"] = local_photos(spark, args)
                table.print()
            if "small" in local or "scale" in local:
                small, results["small"], scale = small_section(spark, args)
                small.print()
                scale["table"].print()
                results["scale"] = scale["figures"]
            if "compact" in local:
                table, results["compact"] = compact_section(spark, args)
                table.print()
        finally:
            spark.stop()
    write_results(args, cores=args.cores, master=args.master, delay_ms=args.delay_ms, **results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
