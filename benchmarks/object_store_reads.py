"""Overlapped reads (dataset/reads.py) against one-at-a-time, on S3Proxy behind a proxy adding --delay-ms a request.

python -m benchmarks.object_store_reads [--files 500] [--delay-ms 20] [--concurrency 32]

Not yet on benchmarks/harness.py (no --smoke): prints both timings and their ratio (target >= 10x).
"""

from __future__ import annotations

import argparse
import time

from dataset.object_store import s3_filesystem
from dataset.reads import read_files
from tests.latency_proxy import LatencyProxy
from tests.s3server import s3_server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--size", type=int, default=4000, help="bytes per object")
    parser.add_argument("--delay-ms", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    with s3_server() as s3, LatencyProxy("127.0.0.1", s3.port, delay_ms=args.delay_ms) as proxy:
        fs = s3_filesystem(s3.env(proxy.endpoint))
        paths = [f"{s3.bucket}/img/{i:06d}.png" for i in range(args.files)]
        fs.pipe({p: b"x" * args.size for p in paths})
        seconds = {}
        for concurrency in (1, args.concurrency):
            start = time.perf_counter()
            assert all(isinstance(d, bytes) for _, d in read_files(fs, paths, concurrency))
            seconds[concurrency] = time.perf_counter() - start
            print(f"concurrency {concurrency:3d}: {args.files} reads in {seconds[concurrency]:.2f} s")
        ratio = seconds[1] / seconds[args.concurrency]
        print(f"ratio one-at-a-time/overlapped {ratio:.1f}x  target >= 10x  {'OK' if ratio >= 10 else 'MISS'}")


if __name__ == "__main__":
    main()
