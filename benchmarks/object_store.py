"""Benchmark: the image conversion, its reads, the listing and the commit on an S3-compatible server on loopback,
behind a proxy that adds `--delay-ms` (20 ms) to every request (issue 10).

    python -m benchmarks.object_store                  # 5,000 images, 100,000 keys, 1,000 shards (several minutes)
    python -m benchmarks.object_store --smoke          # tiny sizes, well under a minute
    python -m benchmarks.object_store --sections conversion --read-concurrency 64 --master 'local[4]'

The server is S3Proxy 4.0.0 with its in-memory store (`tests/s3server.py`; `--backend moto` for moto's server), the
proxy `tests/latency_proxy.py` in its own process; both on 127.0.0.1, started and always stopped here. Everything
shares this machine's cores: the server, the proxy, Spark and its Python workers, and whatever else runs. Each
section prints its figures with where the CPU went (server, proxy, Spark JVM, Python workers, this process, other
processes) and the requests the proxy forwarded, so that a missed target can be explained.

1. conversion: `convert_images` (the real job, Spark `--master`, default local[<cores>]) of `--images` generated
   64x64 PNGs from s3://bucket/raw to s3://bucket/datasets/x with the default `read_concurrency` (overlapped reads,
   dataset/reads.py, through obstore), against the same job with `read_concurrency=1` (one file at a time per task)
   into s3://bucket/datasets/x1. Untimed first: every image read once straight from the server (its JIT warm-up),
   and a small conversion that starts the Python workers. Target: overlapped >= 15x the images/s of one at a time,
   or, where the cores bound it, >= 0.9 of the ratio they allow (the CPU the overlapped run's process tree used per
   image spread over the cores, against the one-at-a-time rate).
2. reads alone: `dataset.reads.read_files` of `--read-files` of those images in this process, with each client
   (s3fs/aiobotocore, the client before, and obstore), one at a time and `--read-concurrency` in flight (no Spark):
   the CPU a GET costs the client (this process), the S3 server and the proxy, all from one run on the same
   objects; then the ratio the cores allow obstore's overlapped reads and the share of it reached.
3. listing: `dataset.fs.list_files` of s3://bucket/listing (`--list-keys` one-byte objects in `--list-folders`
   label folders; the root, then the folders 16 at a time) through obstore and through s3fs, against one serial
   listing of the root (`fs.find`), and against `list_files`'s own requests made one after another.
4. commit: of a dataset of `--shards` shards of `--shard-kb` KB, already written in a run folder under their final
   names: the one commit path (conversion/publish.py: the rejected report, the version file by a conditional PUT,
   its copy `manifest.json`, `_SUCCESS`, the report copied to `_rejected/`; no shard is moved).

Bulk uploads (the images, the listing's keys, the shards) go straight to the server, not through the proxy, with
many requests in flight (`put_objects`). Figures go to `<workdir>/results.json`.
"""

from __future__ import annotations

if not __package__:  # run by path, `python benchmarks/object_store.py`: import as `-m` does
    import _repo_root  # noqa: F401

import argparse
import asyncio
import collections
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

import psutil

from benchmarks.convert_images import NUM_LABELS, small_png
from benchmarks.harness import (
    Table,
    Target,
    add_run_arguments,
    benchmark_run,
    per_second,
    rate_cell,
    ratio,
    seconds_cell,
    start_spark,
    timed,
    write_results,
)
from conversion.images.convert import ConversionSummary, convert_images
from conversion.images.options import ImageConvertOptions
from conversion.publish import RunFolder, publish
from dataset.fs import LISTING_THREADS, list_files
from dataset.layout import REJECTED_REPORT, shard_file_name
from dataset.manifest import IMAGE_KEY_FEATURE, IMAGE_LABEL_FEATURE, Manifest, ShardFile, SplitInfo, image_features
from dataset.object_store import s3_filesystem
from dataset.obstore_io import OBSTORE_VARIABLE
from dataset.reads import DEFAULT_READ_CONCURRENCY, read_files
from jobs.spark_cli import add_spark_arguments
from tests.latency_proxy import LatencyProxy
from tests.s3server import S3Endpoint, s3_server

SECTIONS = ("conversion", "reads", "listing", "commit")
CONVERSION_TARGET = Target(">=", 15)
READS_TARGET = Target(">=", 15)
CAP_SHARE_TARGET = Target(">=", 0.9)  # of the ratio this machine's cores allow (where they, not latency, bound it)
CLIENTS = ("s3fs", "obstore")  # aiobotocore (the client before) and Rust's object_store, both through read_files
BUCKET = "bucket"
UPLOAD_CONCURRENCY = 64  # PUTs in flight for the bulk uploads (straight to the server)
WARMUP_PER_LABEL = 4  # images per label of the conversion that starts the Python workers
SERVER_NAMES = {"s3proxy": "S3Proxy 4.0.0 (in-memory store)", "moto": "moto server"}
SMOKE = {"images": 200, "read_files": 40, "list_keys": 2_000, "list_folders": 20, "shards": 50, "shard_kb": 4}


# --------------------------------------------------------------------------- bulk uploads


def put_objects(endpoint: S3Endpoint, objects: Mapping[str, bytes], concurrency: int = UPLOAD_CONCURRENCY) -> None:
    """PUT every `key: body` of `objects` into the endpoint's bucket, `concurrency` requests in flight.

    botocore's SigV4 signer over aiohttp connections (both come with s3fs): about 0.2 ms of client CPU a PUT here,
    against 1.6 ms through s3fs's `pipe` (botocore's whole request pipeline), which took 204 s for the listing's
    100,000 empty objects. Raises RuntimeError on the first refused PUT.
    """
    asyncio.run(_put_all(endpoint, objects, concurrency))


async def _put_all(endpoint: S3Endpoint, objects: Mapping[str, bytes], concurrency: int) -> None:
    import aiohttp
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    from yarl import URL

    signer = S3SigV4Auth(Credentials(endpoint.access_key, endpoint.secret_key), "s3", endpoint.region)
    keys = iter(objects)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            for key in keys:  # one shared iterator: each key is taken by exactly one worker
                url = f"{endpoint.url}/{endpoint.bucket}/{quote(key)}"
                body = objects[key]
                request = AWSRequest("PUT", url, data=body, headers={"Content-Length": str(len(body))})
                signer.add_auth(request)
                async with session.put(URL(url, encoded=True), data=body, headers=dict(request.headers)) as reply:
                    text = await reply.text()
                    if reply.status != 200:
                        raise RuntimeError(f"PUT {key} answered {reply.status}: {text[:300]}")

        await asyncio.gather(*(worker() for _ in range(concurrency)))


# --------------------------------------------------------------------------- where the CPU went


@dataclass(frozen=True)
class CpuSample:
    """CPU seconds so far of this process tree (by role) and of the whole machine, at one moment."""

    by_role: dict[str, float]
    machine_busy: float


def _role(proc: psutil.Process, me: int) -> str:
    if proc.pid == me:
        return "this process"
    command = " ".join(proc.cmdline())
    if "s3proxy" in command or "moto.server" in command:
        return "S3 server"
    if "latency_proxy" in command:
        return "proxy"
    if "pyspark" in command and ("daemon" in command or "worker" in command):
        return "Python workers"
    if "java" in proc.name():
        return "Spark JVM"
    return "other children"


def cpu_sample() -> CpuSample:
    """User+system CPU of this process and every descendant (with the children each reaped), by role."""
    me = psutil.Process()
    by_role: collections.Counter[str] = collections.Counter()
    for proc in [me, *me.children(recursive=True)]:
        try:
            times = proc.cpu_times()
            by_role[_role(proc, me.pid)] += times.user + times.system + times.children_user + times.children_system
        except psutil.Error:  # it ended meanwhile (its time went to its parent)
            continue
    machine = psutil.cpu_times()
    busy = sum(getattr(machine, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq"))
    return CpuSample(dict(by_role), busy)


@dataclass
class Phase:
    """What one timed block cost: wall seconds, CPU seconds by role, requests the proxy forwarded by kind."""

    seconds: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)
    server_threads: dict[str, float] = field(default_factory=dict)  # the S3 server's CPU seconds by thread kind

    @property
    def ours(self) -> float:
        """CPU seconds of this process tree (the benchmark, the server, the proxy, Spark)."""
        return sum(seconds for role, seconds in self.cpu.items() if role != "machine")

    @property
    def others(self) -> float:
        """CPU seconds of every other process of the machine meanwhile."""
        return max(0.0, self.cpu.get("machine", 0.0) - self.ours)

    def cpu_line(self, cores: int) -> str:
        """`CPU s: S3 server 3.1, ..., other processes 0.4; machine busy 1.84 of 2 cores` (most first)."""
        ours = sorted(((role, s) for role, s in self.cpu.items() if role != "machine"), key=lambda kv: -kv[1])
        parts = [f"{role} {seconds:.1f}" for role, seconds in ours if seconds]
        busy = per_second(self.cpu.get("machine", 0.0), self.seconds)
        return f"CPU s: {', '.join(parts)}, other processes {self.others:.1f}; machine busy {busy:.2f} of {cores} cores"

    def requests_line(self) -> str:
        """`requests: 5,012 (get 5,000, put 12)`, with the rate."""
        total = self.requests.get("total", 0)
        kinds = ", ".join(f"{kind} {n:,}" for kind, n in sorted(self.requests.items(), key=lambda kv: -kv[1])
                          if kind not in ("total", "GET", "PUT", "HEAD", "POST", "DELETE"))  # fmt: skip
        return f"requests: {total:,} ({kinds}), {per_second(total, self.seconds):.0f}/s through the proxy"


@contextmanager
def measured(proxy: LatencyProxy) -> Iterator[Phase]:
    """Time the block and attribute its CPU and requests (the proxy's counts start from zero)."""
    phase = Phase()
    proxy.reset()
    server = _server_pid()
    threads_before = thread_cpu(server)
    before = cpu_sample()
    with timed() as timing:
        yield phase
    after = cpu_sample()
    threads_after = thread_cpu(server)
    phase.server_threads = {
        kind: threads_after[kind] - threads_before.get(kind, 0.0)
        for kind in threads_after
        if threads_after[kind] - threads_before.get(kind, 0.0) > 0
    }
    phase.seconds = timing.seconds
    roles = set(before.by_role) | set(after.by_role)
    phase.cpu = {role: after.by_role.get(role, 0.0) - before.by_role.get(role, 0.0) for role in roles}
    phase.cpu["machine"] = after.machine_busy - before.machine_busy
    counted = proxy.counts()
    phase.requests = {kind: counted[kind] for kind in counted}


def phase_rows(table: Table, phase: Phase, cores: int) -> None:
    table.line(phase.cpu_line(cores), indent=4)
    table.line(phase.requests_line(), indent=4)
    if phase.server_threads:
        kinds = sorted(phase.server_threads.items(), key=lambda kv: -kv[1])
        table.line("S3 server CPU s by thread: " + ", ".join(f"{kind} {sec:.2f}" for kind, sec in kinds), indent=4)


_THREAD_KINDS = (
    ("C2 Compiler", "JIT"),
    ("C1 Compiler", "JIT"),
    ("GC", "GC"),
    ("G1", "GC"),
    ("S3Proxy-Jetty", "Jetty"),
    ("qtp", "Jetty"),
)


def _server_pid() -> int | None:
    me = psutil.Process()
    for proc in me.children(recursive=True):
        try:
            if _role(proc, me.pid) == "S3 server":
                return proc.pid
        except psutil.Error:
            continue
    return None


def thread_cpu(pid: int | None) -> dict[str, float]:
    """CPU seconds of the live threads of `pid` by kind (JIT, GC, Jetty's request threads, other), from
    /proc/<pid>/task/*/stat; threads that ended between two samples are left out of the difference."""
    out: collections.Counter[str] = collections.Counter()
    if pid is None:
        return {}
    tick = os.sysconf("SC_CLK_TCK")
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return {}
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as stat:
                text = stat.read()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        fields = text[text.rindex(")") + 2 :].split()
        kind = next((k for prefix, k in _THREAD_KINDS if name.startswith(prefix)), "other")
        out[kind] += (int(fields[11]) + int(fields[12])) / tick
    return dict(out)


def phase_dict(phase: Phase) -> dict[str, Any]:
    return {"cpu_s": phase.cpu, "requests": phase.requests}


@dataclass
class Bench:
    """One run's server, proxy and s3fs clients. The two clients live as long as the run: an s3fs filesystem
    collected while `put_objects` runs its own event loop would close its session on that loop (an error)."""

    args: argparse.Namespace
    s3: S3Endpoint
    proxy: LatencyProxy
    cores: int
    direct: Any = None  # s3fs straight to the server
    proxied: Any = None  # s3fs through the proxy

    def __post_init__(self) -> None:
        self.direct = s3_filesystem(self.s3.env())
        self.proxied = s3_filesystem(self.s3.env(self.proxy.endpoint))

    def measured(self) -> Any:
        """`measured(proxy)` of this run."""
        return measured(self.proxy)

    def rows(self, table: Table, phase: Phase) -> None:
        phase_rows(table, phase, self.cores)


# --------------------------------------------------------------------------- 1. conversion


def image_key(prefix: str, index: int) -> str:
    """`<prefix>/class_LL/img_NNNNNN.png`, the label being `index % NUM_LABELS`."""
    return f"{prefix}/class_{index % NUM_LABELS:02d}/img_{index:06d}.png"


def convert(spark: Any, input_url: str, output_url: str, num_shards: int, read_concurrency: int) -> ConversionSummary:
    """Run the conversion job; every image must be written, none rejected."""
    options = ImageConvertOptions(
        input=input_url, output=output_url, num_shards=num_shards, read_concurrency=read_concurrency
    )
    summary = convert_images(spark, options)
    if summary.rejected or sum(summary.records.values()) != summary.num_files_seen:
        raise RuntimeError(f"conversion into {output_url} rejected images: {summary.text()}")
    return summary


def conversion_section(bench: Bench, spark: Any) -> tuple[Table, dict[str, Any]]:
    args, root = bench.args, f"s3://{bench.s3.bucket}"
    runs: dict[str, dict[str, Any]] = {}
    convert(spark, f"{root}/warmup", f"{root}/datasets/warmup", 1, args.read_concurrency)  # starts the workers
    for name, concurrency, output in (("overlapped", args.read_concurrency, "x"), ("one_at_a_time", 1, "x1")):
        with bench.measured() as phase:
            summary = convert(spark, f"{root}/raw", f"{root}/datasets/{output}", args.num_shards, concurrency)
        images = sum(summary.records.values())
        runs[name] = {"read_concurrency": concurrency, "images": images, "seconds": phase.seconds,
                      "images_per_s": per_second(images, phase.seconds), "timings": summary.timings, "phase": phase}  # fmt: skip
    one_rate = runs["one_at_a_time"]["images_per_s"]
    speedup = ratio(runs["overlapped"]["images_per_s"], one_rate)
    table = Table(
        f"conversion: {args.images:,} PNG 64x64 from {root}/raw to {root}/datasets/x, {args.delay_ms:g} ms a request, "
        f"{args.master}, {args.num_shards} shards per split"
    )
    for label, name in ((f"{args.read_concurrency} in flight", "overlapped"), ("one at a time", "one_at_a_time")):
        run = runs[name]
        times = run["timings"]
        table.row(label, seconds_cell(run["seconds"]), rate_cell(run["images_per_s"], "images/s"),
                  f"(read_concurrency={run['read_concurrency']}: listing and plan {times['listing_planning_s']:.2f} s, "
                  f"tasks {times['work_s']:.2f} s, commit {times['commit_s']:.2f} s)")  # fmt: skip
        bench.rows(table, run["phase"])
    table.figure("ratio overlapped/one", speedup, CONVERSION_TARGET, "(images/s; >1: overlapped is faster)")
    overlapped = runs["overlapped"]["phase"]
    per_image = overlapped.ours / runs["overlapped"]["images"]  # CPU seconds of this process tree per image
    cap = cap_figures(table, bench, overlapped, per_image, one_rate, speedup, "images")
    tasks = {name: per_second(run["images"], run["timings"]["work_s"]) for name, run in runs.items()}
    table.figure("tasks alone overlapped/one", ratio(tasks["overlapped"], tasks["one_at_a_time"]), None,
                 f"(images/s of the tasks' phase: {tasks['overlapped']:.0f} against {tasks['one_at_a_time']:.0f}; "
                 "without the job's listing, planning and commit)")  # fmt: skip
    results = {
        name: {k: v for k, v in run.items() if k != "phase"} | phase_dict(run["phase"]) for name, run in runs.items()
    }
    return table, {**results, "ratio": CONVERSION_TARGET.as_dict(speedup), "cap": cap, "tasks_images_per_s": tasks}


# --------------------------------------------------------------------------- 2. reads alone, both clients


@contextmanager
def client(name: str) -> Iterator[None]:
    """This process's object-store reads through `name`: "obstore" (the project's default) or "s3fs" (aiobotocore,
    the client before; `USE_OBSTORE=0`)."""
    saved = os.environ.get(OBSTORE_VARIABLE)
    os.environ[OBSTORE_VARIABLE] = "1" if name == "obstore" else "0"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(OBSTORE_VARIABLE, None)
        else:
            os.environ[OBSTORE_VARIABLE] = saved


def per_get(phase: Phase, role: str, gets: int) -> float:
    """Milliseconds of `role`'s CPU per GET in `phase`."""
    return 1000 * phase.cpu.get(role, 0.0) / max(gets, 1)


def reads_section(bench: Bench) -> tuple[Table, dict]:
    """`read_files` (the image tasks' reads) of the same objects through the same proxy, with each client, one at a
    time and overlapped: time, and CPU per GET of this process (the client), the server and the proxy."""
    args = bench.args
    paths = [f"{bench.s3.bucket}/{image_key('raw', i)}" for i in range(min(args.read_files, args.images))]
    phases: dict[tuple[str, int], Phase] = {}
    for concurrency in (args.read_concurrency, 1):
        for name in CLIENTS:
            with client(name), bench.measured() as phase:
                failed = [p for p, data in read_files(bench.proxied, paths, concurrency) if not isinstance(data, bytes)]
            if failed:
                raise RuntimeError(f"{len(failed)} reads through {name} failed, e.g. {failed[0]}")
            gets = phase.requests.get("get", 0)
            if gets != len(paths):
                raise RuntimeError(f"{name}: the proxy saw {gets} GETs for {len(paths)} reads")
            phases[name, concurrency] = phase
    table = Table(
        f"reads alone: {len(paths):,} of those images read by this process with each client, "
        f"{args.delay_ms:g} ms a request (CPU ms a GET: this process = the client, the server, the proxy)"
    )
    results: dict[str, Any] = {"files": len(paths)}
    for name in CLIENTS:
        for concurrency in (args.read_concurrency, 1):
            phase = phases[name, concurrency]
            label = f"{name}, {concurrency} in flight" if concurrency > 1 else f"{name}, one at a time"
            cpu = {role: per_get(phase, role, len(paths)) for role in ("this process", "S3 server", "proxy")}
            table.row(label, seconds_cell(phase.seconds), rate_cell(per_second(len(paths), phase.seconds), "reads/s"),
                      f"CPU a GET: client {cpu['this process']:.3f} ms, server {cpu['S3 server']:.3f} ms, "
                      f"proxy {cpu['proxy']:.3f} ms")  # fmt: skip
            bench.rows(table, phase)
            results[f"{name}_{concurrency}"] = {"seconds": phase.seconds, "cpu_ms_per_get": cpu} | phase_dict(phase)
    for name in CLIENTS:
        speedup = ratio(phases[name, 1].seconds, phases[name, args.read_concurrency].seconds)
        results[f"{name}_ratio"] = READS_TARGET.as_dict(speedup)
        table.figure(f"{name}: overlapped/one", speedup, READS_TARGET, "(reads/s; >1: overlapped is faster)")
    lean = ratio(per_get(phases["s3fs", args.read_concurrency], "this process", len(paths)),
                 per_get(phases["obstore", args.read_concurrency], "this process", len(paths)))  # fmt: skip
    table.figure(
        "client CPU s3fs/obstore", lean, None, f"(a GET, {args.read_concurrency} in flight; >1: obstore is leaner)"
    )
    results["client_cpu_ratio_s3fs_obstore"] = lean
    results["cap"] = reads_cap(
        table, bench, phases[("obstore", args.read_concurrency)], phases["obstore", 1], len(paths)
    )
    return table, results


def reads_cap(table: Table, bench: Bench, overlapped: Phase, one: Phase, reads: int) -> dict[str, Any]:
    """`cap_figures` of obstore's overlapped reads, with the CPU a read cost each of its parts."""
    cpu_per_read = overlapped.ours / reads
    parts = {role: per_get(overlapped, role, reads) for role in ("S3 server", "proxy", "this process")}
    table.line(
        f"obstore, {bench.args.read_concurrency} in flight: {1000 * cpu_per_read:.3f} ms of CPU a read (server "
        f"{parts['S3 server']:.3f}, proxy {parts['proxy']:.3f}, client {parts['this process']:.3f})"
    )
    one_rate = per_second(reads, one.seconds)
    reached = ratio(per_second(reads, overlapped.seconds), one_rate)
    return cap_figures(table, bench, overlapped, cpu_per_read, one_rate, reached, "reads")


def cap_figures(
    table: Table, bench: Bench, overlapped: Phase, cpu_per_unit: float, one_rate: float, reached: float, unit: str
) -> dict[str, Any]:
    """The ratio overlapped/one at a time this machine allows, and the share of it `reached`: the lower of the CPU
    bound (its cores over the CPU seconds a unit cost this process tree: client, server, proxy, Spark) and the
    latency bound (`--read-concurrency` times the requests in flight); also with the cores that other processes
    left free during the overlapped run (a busy machine), for information."""
    concurrency = bench.args.read_concurrency
    others = per_second(overlapped.others, overlapped.seconds)  # cores other processes took meanwhile
    idle = ratio(per_second(bench.cores, cpu_per_unit), one_rate)
    left = ratio(per_second(max(bench.cores - others, 0.0), cpu_per_unit), one_rate)
    cap, cap_left = min(idle, concurrency), min(left, concurrency)
    table.line(
        f"cap: {bench.cores} idle cores allow {per_second(bench.cores, cpu_per_unit):.0f} {unit}/s, {idle:.1f}x one at "
        f"a time ({one_rate:.0f}/s); {concurrency} in flight allow {concurrency}x: cap {cap:.1f}x. Other processes "
        f"took {others:.2f} cores meanwhile; with what they left, cap {cap_left:.1f}x"
    )
    table.figure("share of the cap", ratio(reached, cap), CAP_SHARE_TARGET, f"({reached:.1f}x of {cap:.1f}x)")
    table.figure("share, busy machine", ratio(reached, cap_left), None, f"({reached:.1f}x of {cap_left:.1f}x)")
    # the server's JIT compiles once per fresh JVM (a real object store is warm): the cap without it, for information
    units = overlapped.ours / cpu_per_unit if cpu_per_unit else 0.0  # images or reads
    jit = overlapped.server_threads.get("JIT", 0.0)
    warm = cap
    if jit and units:
        warm = min(ratio(per_second(bench.cores, cpu_per_unit - jit / units), one_rate), concurrency)
        table.line(f"the S3 server's JIT took {jit:.1f} s of it; without that (a warm server) the cap is {warm:.1f}x")
    return {"cpu_ms_per_unit": 1000 * cpu_per_unit, "cpu_bound_ratio": idle, "latency_bound_ratio": concurrency,
            "cap_ratio": cap, "reached_ratio": reached, "share": CAP_SHARE_TARGET.as_dict(ratio(reached, cap)),
            "other_processes_cores": others, "cap_ratio_busy": cap_left, "cap_ratio_warm_server": warm}  # fmt: skip


# --------------------------------------------------------------------------- 3. listing


def list_folders_one_by_one(fs: Any, root: str) -> list[str]:
    """What `list_files` lists, one request after another: the root, then each top-level folder's `find`."""
    fs.invalidate_cache()
    top = fs.ls(root, detail=True)
    found = [entry["name"] for entry in top if entry["type"] != "directory"]
    for entry in top:
        if entry["type"] == "directory":
            found += fs.find(entry["name"], withdirs=False)
    return found


def listing_section(bench: Bench) -> tuple[Table, dict]:
    args = bench.args
    # one byte each: obstore hands a listing with a zero-byte object (maybe a folder marker) to s3fs
    keys = {f"listing/c{i % args.list_folders:04d}/k{i:07d}": b"x" for i in range(args.list_keys)}
    with timed() as upload:
        put_objects(bench.s3, keys)
    print(f"  uploaded {len(keys):,} one-byte objects in {upload.seconds:.1f} s", flush=True)
    root = f"{bench.s3.bucket}/listing"
    found: dict[str, int] = {}
    by_client: dict[str, Phase] = {}
    for name in CLIENTS:
        with client(name), bench.measured() as by_client[name]:
            found[name] = len(list_files(f"s3://{root}"))
    bench.proxied.invalidate_cache()
    with client("s3fs"), bench.measured() as serial:
        listed = bench.proxied.find(root)
    with client("s3fs"), bench.measured() as one_by_one:
        by_folder = list_folders_one_by_one(bench.proxied, root)
    if {*found.values(), len(listed), len(by_folder)} != {len(keys)}:
        raise RuntimeError(f"listed {found}, {len(listed)} and {len(by_folder)} keys of {len(keys)}")
    parallel = by_client["obstore"]
    table = Table(f"listing: {len(keys):,} keys in {args.list_folders:,} label folders, {args.delay_ms:g} ms a request")
    rows = (
        (f"list_files, {LISTING_THREADS} at a time", parallel, "(obstore: the root, then the label folders)"),
        ("list_files through s3fs", by_client["s3fs"], "(the same requests, through aiobotocore)"),
        ("fs.find, serial", serial, "(s3fs: the root's pages of 1,000 keys, one after another)"),
        ("folders one by one", one_by_one, "(s3fs: list_files's requests, one after another)"),
    )
    for label, phase, detail in rows:
        table.row(label, seconds_cell(phase.seconds), rate_cell(per_second(len(keys), phase.seconds), "keys/s"),
                  f"client {1e6 * phase.cpu.get('this process', 0.0) / len(keys):.1f} us a key {detail}")  # fmt: skip
        bench.rows(table, phase)
    speedup = ratio(serial.seconds, parallel.seconds)
    table.figure("ratio serial/parallel", speedup, None, "(fs.find / list_files; >1: list_files is faster; no target)")
    table.figure("ratio s3fs/obstore", ratio(by_client["s3fs"].seconds, parallel.seconds), None, "(list_files)")
    table.figure("ratio one by one/parallel", ratio(one_by_one.seconds, parallel.seconds), None, "(the same requests)")
    results = {"keys": len(keys), "folders": args.list_folders, "upload_s": upload.seconds, "ratio": speedup,
               **{name: {"seconds": phase.seconds} | phase_dict(phase)
                  for name, phase in (("list_files", parallel), ("list_files_s3fs", by_client["s3fs"]),
                                      ("find", serial), ("one_by_one", one_by_one))}}  # fmt: skip
    return table, results


# --------------------------------------------------------------------------- 4. commit


def shard_manifest(source: str, names: list[str], records_per_shard: int, shard_bytes: int) -> Manifest:
    """The manifest of a one-split image dataset made of `names` (what the conversion would write)."""
    files = tuple(ShardFile(name, records_per_shard, shard_bytes) for name in names)
    return Manifest(
        kind="images",
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        source_root=source,
        options={},
        labels=("a",),
        features=image_features(),
        splits={"train": SplitInfo(records_per_shard * len(names), files, {"a": records_per_shard * len(names)})},
        compression="none",
        num_files_seen=records_per_shard * len(names),
        num_rejected={},
        label_feature=IMAGE_LABEL_FEATURE,
        key_feature=IMAGE_KEY_FEATURE,
    )


def commit(output: RunFolder, winners: dict[str, str], manifest: Manifest) -> None:
    """What `convert_images` does once every shard is written: the rejected report, the attempts kept, the publish."""
    output.write_text(REJECTED_REPORT, "")
    output.keep_attempts(winners)
    publish(output, manifest, 0, manifest.num_records, 0.0, "images")


def commit_section(bench: Bench) -> tuple[Table, dict]:
    args, s3 = bench.args, bench.s3
    names = [shard_file_name("train", i, args.shards, "none") for i in range(args.shards)]
    body = os.urandom(args.shard_kb * 1024)
    manifest = shard_manifest(f"s3://{s3.bucket}/raw", names, 100, len(body))
    output = RunFolder(f"s3://{s3.bucket}/commit/version")
    output.begin("error")  # notes the version it builds on, as the job does first
    put_objects(s3, {f"{output.path.split('/', 1)[1]}/{name}": body for name in names})  # what the tasks wrote
    with bench.measured() as phase:
        commit(output, {f"{output.path}/{name}": name for name in names}, manifest)
    bench.direct.invalidate_cache()
    committed = [p for p in bench.direct.find(f"{s3.bucket}/commit/version") if p.endswith(".tfrecord")]
    if len(committed) != len(names):
        raise RuntimeError(f"{len(committed)} shards under the output after the commit, not {len(names)}")
    table = Table(f"commit: {args.shards:,} shards of {args.shard_kb:,} KB, {args.delay_ms:g} ms a request")
    table.row("version commit", seconds_cell(phase.seconds), "(report, version file, manifest.json, _SUCCESS)")
    bench.rows(table, phase)
    results = {"shards": args.shards, "shard_bytes": len(body), "seconds": phase.seconds, **phase_dict(phase)}
    return table, results


# --------------------------------------------------------------------------- the run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.object_store",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated, of {', '.join(SECTIONS)}")
    parser.add_argument("--backend", choices=sorted(SERVER_NAMES), default="s3proxy", help="the S3-compatible server")
    parser.add_argument("--delay-ms", type=float, default=20.0, help="added by the proxy to every request")
    parser.add_argument("--images", type=int, default=5_000, help="64x64 PNGs to convert")
    parser.add_argument("--num-shards", type=int, default=4, help="shards per split of the conversion")
    parser.add_argument("--read-concurrency", type=int, default=DEFAULT_READ_CONCURRENCY,
                        help="reads in flight per task when overlapped (the job's default)")  # fmt: skip
    parser.add_argument("--read-files", type=int, default=500, help="images read by the reads-alone section")
    parser.add_argument("--list-keys", type=int, default=100_000, help="keys listed by the listing section")
    parser.add_argument("--list-folders", type=int, default=100, help="label folders the keys are spread over")
    parser.add_argument("--shards", type=int, default=1_000, help="shards of the committed dataset")
    parser.add_argument("--shard-kb", type=int, default=64, help="KB per shard")
    add_run_arguments(parser, "object_store", "where results.json goes")
    add_spark_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    least = {"images": 1, "num_shards": 1, "read_concurrency": 2, "read_files": 1, "list_keys": 1,
             "list_folders": 1, "shards": 1, "shard_kb": 1}  # fmt: skip
    with benchmark_run(parser, argv, "object_store", SMOKE, least) as args:
        sections = [s.strip() for s in args.sections.split(",") if s.strip()]
        unknown = sorted(set(sections) - set(SECTIONS))
        if unknown:
            parser.error(f"--sections: unknown {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
        return measure(args, sections)


def measure(args: argparse.Namespace, sections: list[str]) -> int:
    results: dict[str, Any] = {}
    with (
        s3_server(args.backend, bucket=BUCKET) as s3,
        LatencyProxy("127.0.0.1", s3.port, delay_ms=args.delay_ms, process=True) as proxy,
    ):
        os.environ.update(s3.env(proxy.endpoint))  # this process, and (through spark_session) Spark's workers
        bench = Bench(args, s3, proxy, os.cpu_count() or 1)
        print(f"{SERVER_NAMES[args.backend]} on {s3.url}, behind the proxy {proxy.endpoint} (+{args.delay_ms:g} ms)")
        if "conversion" in sections or "reads" in sections:
            upload_images(bench)
        if "conversion" in sections:
            args.input, args.output = f"s3://{s3.bucket}/raw", f"s3://{s3.bucket}/datasets/x"  # as the job's argv
            spark, start_s = start_spark(args, "benchmark_object_store", f"local[{bench.cores}]")
            print(f"Spark {spark.version} on {args.master}, started in {start_s:.1f} s (not timed)\n", flush=True)
            try:
                table, results["conversion"] = conversion_section(bench, spark)
            finally:  # before the other sections: processes that end while a section runs would take their CPU along
                spark.stop()
            table.print()
        runners: dict[str, Callable[[], tuple[Table, dict]]] = {
            "reads": lambda: reads_section(bench),
            "listing": lambda: listing_section(bench),
            "commit": lambda: commit_section(bench),
        }
        for name, run in runners.items():
            if name in sections:
                table, results[name] = run()
                table.print()
    write_results(args, server=SERVER_NAMES[args.backend], delay_ms=args.delay_ms, master=args.master,
                  read_concurrency=args.read_concurrency, **results)  # fmt: skip
    return 0


def upload_images(bench: Bench) -> None:
    """The images (and the warm-up conversion's), straight to the server; then each read once from it."""
    images = {image_key("raw", i): small_png(i) for i in range(bench.args.images)}
    images |= {image_key("warmup", i): small_png(i) for i in range(WARMUP_PER_LABEL * NUM_LABELS)}
    with timed() as upload:
        put_objects(bench.s3, images)
    size = sum(map(len, images.values()))
    print(f"  uploaded {len(images):,} PNGs ({size / 1e6:.1f} MB) in {upload.seconds:.1f} s", flush=True)
    # The server's first thousands of GETs also compile its code (JIT): every image is read once, straight from the
    # server, so that neither timed run pays for that (a real object store is warm).
    paths = [f"{bench.s3.bucket}/{key}" for key in images]
    with timed() as warm:
        unread = [path for path, data in read_files(bench.direct, paths, 32) if not isinstance(data, bytes)]
    print(f"  read them once from the server in {warm.seconds:.1f} s (its warm-up, not timed)", flush=True)
    if unread:
        raise RuntimeError(f"{len(unread)} uploaded images could not be read, e.g. {unread[0]}")


if __name__ == "__main__":
    sys.exit(main())
