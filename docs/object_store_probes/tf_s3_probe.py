"""Does TensorFlow 2.15 + tensorflow-io reach an S3-compatible server? tf.io.gfile, TFRecordDataset and a tiny
tf.estimator (checkpoints, evaluate, export_saved_model) on s3://, against S3Proxy on loopback, settings from
dataset.object_store.client_env. Needs tensorflow-io==0.36.0 (not in the project's pins; a scratch venv).

    python docs/object_store_probes/tf_s3_probe.py [--multipart-download]

Prints one line per step and a JSON summary, then leaves with os._exit: tensorflow-io 0.36 aborts at interpreter
exit once s3:// was used ("pure virtual method called", exit 134, tensorflow/io#1912).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository

from dataset.object_store import client_env  # noqa: E402
from tests.latency_proxy import LatencyProxy  # noqa: E402
from tests.s3server import s3_server  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--multipart-download", action="store_true", help="leave tensorflow-io's ranged download on")
    a = p.parse_args(argv)
    res: dict = {}
    # the proxy runs in its own process: TF's C++ file system holds the GIL while it waits on the network
    with s3_server("s3proxy") as s3, LatencyProxy("127.0.0.1", s3.port, process=True) as proxy:
        env = client_env(s3.env(proxy.endpoint))
        if a.multipart_download:
            env["S3_DISABLE_MULTI_PART_DOWNLOAD"] = "0"
        os.environ.update(env)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import numpy as np
        import tensorflow as tf
        import tensorflow_io  # noqa: F401

        b = f"s3://{s3.bucket}"

        def step(name, fn):
            t = time.perf_counter()
            proxy.reset()
            try:
                r = fn()
                res[name] = {"ok": True, "s": round(time.perf_counter() - t, 3), "value": repr(r)[:120]}
            except Exception as e:  # noqa: BLE001 - a probe reports every failure
                res[name] = {"ok": False, "error": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"}
            res[name]["requests"] = {k: v for k, v in proxy.counts().items() if k.islower()}
            print(name, res[name], flush=True)

        def write():
            with tf.io.gfile.GFile(f"{b}/dir/a.txt", "w") as f:
                f.write("hello")

        step("gfile.write", write)
        step("gfile.read", lambda: tf.io.gfile.GFile(f"{b}/dir/a.txt").read())
        step("gfile.makedirs", lambda: tf.io.gfile.makedirs(f"{b}/dir/sub"))
        step("gfile.listdir", lambda: tf.io.gfile.listdir(f"{b}/dir"))
        step("gfile.glob", lambda: tf.io.gfile.glob(f"{b}/dir/*.txt"))
        step("gfile.rename", lambda: tf.io.gfile.rename(f"{b}/dir/a.txt", f"{b}/dir/b.txt", overwrite=True))
        step("gfile.stat", lambda: tf.io.gfile.stat(f"{b}/dir/b.txt").length)

        def records():
            for i in range(2):
                with tf.io.TFRecordWriter(f"{b}/tfr/part-{i}.tfrecord") as w:
                    for j in range(100):
                        w.write(f"r{i}-{j}".encode() * 50)
            ds = tf.data.TFRecordDataset(tf.io.gfile.glob(f"{b}/tfr/*.tfrecord"), num_parallel_reads=2)
            return sum(1 for _ in ds)

        step("TFRecordDataset", records)

        fc = [tf.feature_column.numeric_column("x", shape=(2,))]

        def input_fn():
            x = np.random.default_rng(0).random((64, 2)).astype("float32")
            y = (x.sum(1) > 1).astype("int32")
            return tf.data.Dataset.from_tensor_slices(({"x": x}, y)).batch(16).repeat(2)

        est = tf.estimator.LinearClassifier(
            fc, model_dir=f"{b}/model", config=tf.estimator.RunConfig(save_checkpoints_steps=4)
        )
        step("estimator.train", lambda: (est.train(input_fn, steps=8), tf.train.latest_checkpoint(f"{b}/model"))[1])
        step("estimator.evaluate", lambda: float(est.evaluate(input_fn, steps=2)["accuracy"]))
        spec = tf.estimator.export.build_parsing_serving_input_receiver_fn(
            tf.feature_column.make_parse_example_spec(fc)
        )
        exported: list = []
        step("export_saved_model", lambda: exported.append(est.export_saved_model(f"{b}/export", spec)) or exported)
        if exported:
            step("saved_model.load", lambda: sorted(tf.saved_model.load(exported[0].decode()).signatures))
    print(json.dumps({k: v["ok"] for k, v in res.items()}), flush=True)
    os._exit(0 if all(v["ok"] for v in res.values()) else 1)


if __name__ == "__main__":
    main()
