"""How many small GETs/s an S3 test server answers, one at a time and with N threads, directly and behind a latency
proxy (bounded: a fixed number of requests per case). Loopback only.

    python docs/object_store_probes/s3_server_throughput.py --backend s3proxy --threads 32 --requests 2000 --delay-ms 20
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository

from tests.latency_proxy import LatencyProxy  # noqa: E402
from tests.s3server import s3_server  # noqa: E402


def _client(env: dict[str, str], pool: int):
    import botocore.session
    from botocore.config import Config

    os.environ.update({k: v for k, v in env.items() if "CHECKSUM" in k})
    return botocore.session.get_session().create_client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_REGION"],
        config=Config(max_pool_connections=pool, retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
    )


def _rate(client, bucket: str, keys: list[str], n: int, threads: int) -> float:
    def get(i: int) -> int:
        return len(client.get_object(Bucket=bucket, Key=keys[i % len(keys)])["Body"].read())

    start = time.perf_counter()
    if threads == 1:
        for i in range(n):
            get(i)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(get, range(n)))
    return n / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", default="s3proxy", choices=["s3proxy", "moto"])
    p.add_argument("--threads", type=int, default=32)
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--delay-ms", type=float, default=20.0)
    p.add_argument("--object-bytes", type=int, default=4096)
    a = p.parse_args(argv)
    if a.threads < 1 or a.requests < 1 or a.delay_ms < 0 or a.object_bytes < 0:
        p.error("threads and requests must be >= 1, delay and size >= 0")
    out: dict = {"backend": a.backend, "threads": a.threads, "object_bytes": a.object_bytes}
    with s3_server(a.backend) as s3:
        client = _client(s3.env(), a.threads)
        keys = [f"bench/{i:03d}" for i in range(64)]
        for k in keys:
            client.put_object(Bucket=s3.bucket, Key=k, Body=os.urandom(a.object_bytes))
        _rate(client, s3.bucket, keys, 200, a.threads)  # warm-up (JIT, connection pool)
        out["direct_sequential_rps"] = round(_rate(client, s3.bucket, keys, min(a.requests, 1000), 1), 1)
        out["direct_concurrent_rps"] = round(_rate(client, s3.bucket, keys, a.requests, a.threads), 1)
        with LatencyProxy("127.0.0.1", s3.port, delay_ms=a.delay_ms) as proxy:
            pclient = _client(s3.env(proxy.endpoint), a.threads)
            n = max(50, min(a.requests // 4, 500))
            seq = _rate(pclient, s3.bucket, keys, min(n, 100), 1)
            conc = _rate(pclient, s3.bucket, keys, n, a.threads)
            out.update(
                delay_ms=a.delay_ms,
                proxied_sequential_rps=round(seq, 1),
                proxied_concurrent_rps=round(conc, 1),
                overlap_speedup=round(conc / seq, 1),
                proxy_counted=dict(proxy.counts()),
            )
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
