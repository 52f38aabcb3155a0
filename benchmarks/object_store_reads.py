"""Overlapped reads (dataset/reads.py) against one at a time, on S3Proxy behind a proxy that adds
`--delay-ms` to every request (loopback only; the proxy, the server and the client share the cores).

python -m benchmarks.object_store_reads [--files 500] [--delay-ms 20] [--concurrency 32] [--smoke]
"""

from __future__ import annotations

import argparse
import sys

from benchmarks.harness import Table, Target, add_run_arguments, benchmark_run, ratio, timed, write_results
from dataset.object_store import s3_filesystem
from dataset.reads import read_files
from tests.latency_proxy import LatencyProxy
from tests.s3server import s3_server

RATIO_TARGET = Target(">=", 10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="object_store_reads", description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=500, help="objects to read")
    parser.add_argument("--size", type=int, default=4000, help="bytes per object")
    parser.add_argument("--delay-ms", type=float, default=20.0, help="added to every request by the proxy")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight when overlapped")
    add_run_arguments(parser, "object_store_reads", "where results.json goes")
    smoke = {"files": 20, "delay_ms": 5.0, "concurrency": 4}
    with benchmark_run(parser, argv, "object_store_reads", smoke, {"files": 1, "concurrency": 2}) as args:
        args.workdir.mkdir(parents=True, exist_ok=True)
        with s3_server() as s3, LatencyProxy("127.0.0.1", s3.port, delay_ms=args.delay_ms) as proxy:
            fs = s3_filesystem(s3.env(proxy.endpoint))
            paths = [f"{s3.bucket}/img/{i:06d}.png" for i in range(args.files)]
            fs.pipe({p: b"x" * args.size for p in paths})
            seconds = {}
            for concurrency in (1, args.concurrency):
                with timed() as timing:
                    failed = [p for p, data in read_files(fs, paths, concurrency) if not isinstance(data, bytes)]
                if failed:
                    raise RuntimeError(f"{len(failed)} reads failed, e.g. {failed[0]}")
                seconds[concurrency] = timing.seconds
        table = Table(f"object-store reads: {args.files} objects of {args.size:,} B, {args.delay_ms:g} ms per request")
        table.figure("one at a time", seconds[1], None, unit="s")
        table.figure(f"{args.concurrency} in flight", seconds[args.concurrency], None, unit="s")
        speedup = ratio(seconds[1], seconds[args.concurrency])
        table.figure("ratio one/overlapped", speedup, RATIO_TARGET, "(>1: overlapped is faster)")
        table.print()
        write_results(args, seconds=seconds, ratio=RATIO_TARGET.as_dict(speedup))
    return 0


if __name__ == "__main__":
    sys.exit(main())
