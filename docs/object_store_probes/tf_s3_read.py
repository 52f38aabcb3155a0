"""TFRecord shards on an S3-compatible server (S3Proxy on loopback): read them with tensorflow-io's s3:// directly,
or copy them to local disk with s3fs first (what a rank would do without tensorflow-io), and sync a model_dir back.

    python docs/object_store_probes/tf_s3_read.py --shards 4 --shard-mb 32

Prints one JSON line. Every TF-with-s3 run happens in a child process: tensorflow-io 0.36 aborts at exit
(tensorflow/io#1912), so the child reports before it exits.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]  # the repository
sys.path.insert(0, str(REPO))

from dataset.object_store import client_env, fsspec_url, s3_filesystem  # noqa: E402
from tests.latency_proxy import LatencyProxy  # noqa: E402
from tests.s3server import s3_server  # noqa: E402

CHILD = r"""
import json, os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
mode, dst, *urls = sys.argv[1:]
import tensorflow as tf
t0 = time.perf_counter()
if mode == "tfio":
    import tensorflow_io  # noqa: F401
    files = urls
else:  # copy to local disk with s3fs, then read locally
    from dataset.object_store import s3_filesystem
    fs = s3_filesystem()
    fs.get(urls, dst + "/")
    files = [os.path.join(dst, os.path.basename(u)) for u in urls]
t_copy = time.perf_counter() - t0
n = nbytes = 0
for rec in tf.data.TFRecordDataset(files, num_parallel_reads=len(files)):
    n += 1
    nbytes += len(rec.numpy())
print(json.dumps({"mode": mode, "records": n, "MB": round(nbytes / 2**20, 1), "copy_s": round(t_copy, 2),
                  "total_s": round(time.perf_counter() - t0, 2)}), flush=True)
os._exit(0)
"""


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shards", type=int, default=4)
    p.add_argument("--shard-mb", type=int, default=32)
    p.add_argument("--record-kb", type=int, default=16)
    p.add_argument("--delay-ms", type=float, default=0.0, help="latency added to every request (proxy in front)")
    a = p.parse_args(argv)
    if min(a.shards, a.shard_mb, a.record_kb) < 1:
        p.error("shards, shard-mb and record-kb must be >= 1")
    out: dict = {"shards": a.shards, "shard_mb": a.shard_mb, "delay_ms": a.delay_ms}
    with (
        s3_server("s3proxy") as s3,
        tempfile.TemporaryDirectory() as tmp,
        LatencyProxy("127.0.0.1", s3.port, delay_ms=a.delay_ms, process=True) as proxy,
    ):
        env = {**os.environ, **s3.env(proxy.endpoint)}
        env.update(client_env(env))
        env["PYTHONPATH"] = str(REPO)
        fs = s3_filesystem(env)
        rec = os.urandom(a.record_kb * 1024)
        import struct  # a TFRecord frame without TF: length, crc(len), data, crc(data)

        import google_crc32c

        def masked(b: bytes) -> bytes:
            c = google_crc32c.value(b)
            return struct.pack("<I", (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF)

        length = struct.pack("<Q", len(rec))
        frame = length + masked(length) + rec + masked(rec)
        per_shard = a.shard_mb * 1024 // a.record_kb
        urls = []
        for i in range(a.shards):
            local = Path(tmp, f"part-{i:05d}.tfrecord")
            local.write_bytes(frame * per_shard)
            url = f"s3a://{s3.bucket}/ds/train/{local.name}"
            fs.put(str(local), fsspec_url(url))
            urls.append(fsspec_url(url))
            local.unlink()
        proxy.reset()
        for mode in ("tfio", "copy"):
            dst = Path(tmp, mode)
            dst.mkdir()
            r = subprocess.run(
                [sys.executable, "-c", CHILD, mode, str(dst), *urls],
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            line = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
            out[mode] = json.loads(line[-1]) if line else {"error": r.stderr[-500:], "rc": r.returncode}
            out[mode]["requests"] = proxy.counts()["total"]
            proxy.reset()
        # model_dir sync: a 20 MB "checkpoint" of 3 files, local -> s3 with s3fs
        md = Path(tmp, "model")
        md.mkdir()
        for name, size in (
            ("model.ckpt-100.data-00000-of-00001", 20 << 20),
            ("model.ckpt-100.index", 4096),
            ("checkpoint", 100),
        ):
            Path(md, name).write_bytes(os.urandom(size))
        t = time.perf_counter()
        fs.put(str(md), f"{s3.bucket}/model/", recursive=True)
        out["sync_model_dir_20MB_s"] = round(time.perf_counter() - t, 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
