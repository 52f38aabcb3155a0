"""dataset/object_store.py against a real S3-compatible server (S3Proxy) on 127.0.0.1.

Needs the jars of `make objectstore-jars` (.cache/jars/, a prerequisite of `make test`) and s3fs (requirements.lock):
without them these tests fail, saying what to run; they never skip.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conversion.images.options import MAX_READ_CONCURRENCY
from dataset.object_store import (
    MAX_POOL_CONNECTIONS,
    fsspec_url,
    object_store_from_env,
    s3_filesystem,
    s3a_hadoop_conf,
    s3a_jar_paths,
    s3fs_storage_options,
    spark_s3a_conf,
    spark_url,
    stage_to_local,
    sync_dir_to_store,
    tensorflow_env,
)
from tests.latency_proxy import LatencyProxy, s3_kind
from tests.s3server import DEFAULT_JAR_CACHE, s3_bucket_fixture, s3_server

REPO = Path(__file__).resolve().parent.parent

s3 = s3_bucket_fixture(scope="module")

AWS_VARS = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_PROFILE",
)


@pytest.fixture
def clean_aws_env(monkeypatch):
    """No AWS variables in this process: the translated settings alone must reach the server."""
    for name in AWS_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


# ---- pure translations ---------------------------------------------------------------------------------------------
def test_translations_from_standard_variables():
    env = {
        "AWS_ENDPOINT_URL": "https://other.example:443",
        "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9000/",
        "AWS_ACCESS_KEY_ID": "k",
        "AWS_SECRET_ACCESS_KEY": "s",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }
    store = object_store_from_env(env)
    assert (store.endpoint_url, store.secure, store.host_port, store.region) == (
        "http://127.0.0.1:9000",
        False,
        "127.0.0.1:9000",
        "eu-west-1",
    )
    assert object_store_from_env({**env, "AWS_REGION": "us-west-2"}).region == "us-west-2"
    assert object_store_from_env({}).region == "us-east-1" and not object_store_from_env({}).custom_endpoint

    opts = s3fs_storage_options(env)
    assert opts["key"] == "k" and opts["secret"] == "s" and opts["use_ssl"] is False
    assert opts["client_kwargs"] == {"endpoint_url": "http://127.0.0.1:9000", "region_name": "eu-west-1"}
    assert opts["config_kwargs"]["s3"] == {"addressing_style": "path"}
    # botocore's default pool (10 connections per client) would cap every worker's reads in flight at 10
    assert opts["config_kwargs"]["max_pool_connections"] == MAX_POOL_CONNECTIONS >= MAX_READ_CONCURRENCY
    assert s3fs_storage_options({})["config_kwargs"] == {"max_pool_connections": MAX_POOL_CONNECTIONS}  # AWS too

    conf = spark_s3a_conf(env)
    assert conf["spark.hadoop.fs.s3a.endpoint"] == "http://127.0.0.1:9000"
    assert conf["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "false"
    assert conf["spark.hadoop.fs.s3.impl"] == "org.apache.hadoop.fs.s3a.S3AFileSystem"
    assert conf["spark.hadoop.fs.s3a.aws.credentials.provider"].endswith("SimpleAWSCredentialsProvider")
    assert "spark.hadoop.fs.s3a.secret.key" not in spark_s3a_conf(env, include_credentials=False)
    assert s3a_hadoop_conf(env)["fs.s3a.endpoint"] == "http://127.0.0.1:9000"

    tf_env = tensorflow_env(env)
    assert tf_env["S3_ENDPOINT"] == "http://127.0.0.1:9000" and tf_env["S3_USE_HTTPS"] == "0"
    assert tf_env["S3_VERIFY_SSL"] == "0" and tf_env["AWS_REGION"] == "eu-west-1"
    assert "S3_ENDPOINT" not in tensorflow_env({"AWS_REGION": "us-east-1"})  # AWS itself: nothing to override

    with pytest.raises(ValueError, match="scheme"):
        object_store_from_env({"AWS_ENDPOINT_URL": "127.0.0.1:9000"})


def test_url_forms():
    assert fsspec_url("s3a://b/k/x.parquet") == "s3://b/k/x.parquet"
    assert fsspec_url("S3N://b/k") == "s3://b/k"
    assert fsspec_url("/local/path") == "/local/path"
    assert spark_url("s3://b/k") == "s3a://b/k" and spark_url("file:///x") == "file:///x"


def test_request_kinds():
    assert s3_kind("PUT", "/b/k", {"x-amz-copy-source": "/b/j"}) == "copy"
    assert s3_kind("PUT", "/b/k", {}) == "put"
    assert s3_kind("GET", "/b?list-type=2&prefix=k", {}) == "list"
    assert s3_kind("GET", "/b/k", {}) == "get"
    assert s3_kind("POST", "/b/k?uploads", {}) == "multipart"
    assert s3_kind("POST", "/b?delete", {}) == "delete"


# ---- against the server ----------------------------------------------------------------------------------------------
def test_server_is_stopped_after_the_block():
    with s3_server() as server:
        socket.create_connection((server.host, server.port), timeout=2).close()
    with pytest.raises(OSError):
        socket.create_connection((server.host, server.port), timeout=2).close()


def test_s3fs_put_get_with_translated_settings(s3, clean_aws_env, tmp_path):
    fs = s3_filesystem(s3.env())
    src = tmp_path / "in.bin"
    src.write_bytes(os.urandom(3 << 20))
    fs.put(str(src), f"s3://{s3.bucket}/put/in.bin")
    fs.get(f"s3://{s3.bucket}/put/in.bin", str(tmp_path / "out.bin"))
    assert (tmp_path / "out.bin").read_bytes() == src.read_bytes()
    # s3a:// is registered with fsspec by s3fs; fsspec_url() is for readers that only know s3://
    fs.pipe(fsspec_url(f"s3a://{s3.bucket}/put/small.txt"), b"hello")
    assert fs.cat(f"s3a://{s3.bucket}/put/small.txt") == b"hello"
    assert sorted(fs.ls(f"{s3.bucket}/put")) == [f"{s3.bucket}/put/in.bin", f"{s3.bucket}/put/small.txt"]

    import fsspec

    with fsspec.open(f"s3a://{s3.bucket}/put/small.txt", "rb", **s3fs_storage_options(s3.env())) as f:
        assert f.read() == b"hello"


def test_stage_shards_to_local_and_sync_a_model_dir_back(s3, clean_aws_env, tmp_path):
    fs = s3_filesystem(s3.env())
    urls = []
    for i in range(3):
        fs.pipe(f"{s3.bucket}/ds/train/part-{i:05d}.tfrecord", bytes([i]) * 1000)
        urls.append(f"s3a://{s3.bucket}/ds/train/part-{i:05d}.tfrecord")
    local = stage_to_local(urls, tmp_path / "shards", s3.env())
    assert [Path(p).read_bytes() for p in local] == [bytes([i]) * 1000 for i in range(3)]

    model = tmp_path / "model"
    (model / "export" / "1").mkdir(parents=True)
    (model / "checkpoint").write_text("model_checkpoint_path: 'model.ckpt-8'")
    (model / "export" / "1" / "saved_model.pb").write_bytes(b"pb")
    assert sync_dir_to_store(model, f"s3a://{s3.bucket}/runs/r1/model/", s3.env()) == 2
    assert fs.cat(f"{s3.bucket}/runs/r1/model/export/1/saved_model.pb") == b"pb"
    assert fs.cat(f"{s3.bucket}/runs/r1/model/checkpoint").startswith(b"model_checkpoint_path")


def test_counting_proxy_sees_copy_for_mv_and_none_for_put(s3, clean_aws_env):
    with LatencyProxy("127.0.0.1", s3.port) as proxy:
        fs = s3_filesystem(s3.env(proxy.endpoint))
        fs.pipe(f"{s3.bucket}/mv/a.txt", b"a" * 1000)
        counted = proxy.counts()
        assert counted["put"] == 1 and counted["copy"] == 0, counted
        proxy.reset()
        fs.mv(f"{s3.bucket}/mv/a.txt", f"{s3.bucket}/mv/b.txt")
        counted = proxy.counts()
        assert counted["copy"] == 1 and counted["delete"] >= 1, counted
        assert fs.cat(f"{s3.bucket}/mv/b.txt") == b"a" * 1000
        assert not fs.exists(f"{s3.bucket}/mv/a.txt")


SPARK_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pyspark.sql import SparkSession
    from dataset.object_store import configure_running_spark, configure_spark_builder
    bucket, jar_dir, tmp = sys.argv[1:4]
    builder = (
        SparkSession.builder.master("local[2]").appName("s3a-test")
        .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2").config("spark.local.dir", tmp)
        .config("spark.sql.warehouse.dir", tmp + "/warehouse")
    )
    spark = configure_spark_builder(builder, jar_dir=jar_dir).getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    out = {}
    try:
        df = spark.range(1000).selectExpr("id", "id % 7 AS label", "cast(id AS string) AS name")
        for scheme in ("s3a", "s3"):
            url = f"{scheme}://{bucket}/spark/{scheme}/table"
            df.repartition(2).write.mode("overwrite").parquet(url)
            back = spark.read.parquet(url)
            out[scheme] = {"rows": back.count(), "label_sum": back.groupBy().sum("label").first()[0],
                           "files": len([f for f in back.inputFiles() if f.endswith(".parquet")])}
        configure_running_spark(spark)
        out["runtime_endpoint"] = spark.sparkContext._jsc.hadoopConfiguration().get("fs.s3a.endpoint")
    finally:
        spark.stop()
    print("RESULT " + json.dumps(out), flush=True)
    """
)


@pytest.mark.slow
def test_spark_parquet_on_s3a_and_s3(s3, tmp_path):
    jar_dir = DEFAULT_JAR_CACHE
    s3a_jar_paths(jar_dir)  # FileNotFoundError saying `make objectstore-jars` when they are missing
    with LatencyProxy("127.0.0.1", s3.port) as proxy:
        env = {k: v for k, v in os.environ.items() if k not in AWS_VARS}
        env.update(s3.env(proxy.endpoint))
        env.update(PYTHONPATH=str(REPO), PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
        java17 = Path("/usr/lib/jvm/java-17-openjdk-amd64")
        if "JAVA_HOME" not in env and java17.is_dir():
            env["JAVA_HOME"] = str(java17)
        r = subprocess.run(
            [sys.executable, "-c", SPARK_SCRIPT, s3.bucket, str(jar_dir), str(tmp_path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        counted = proxy.counts()
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")]
    assert r.returncode == 0 and lines, r.stderr[-4000:]
    result = json.loads(lines[-1][len("RESULT ") :])
    expected_label_sum = sum(i % 7 for i in range(1000))
    for scheme in ("s3a", "s3"):
        assert result[scheme]["rows"] == 1000 and result[scheme]["label_sum"] == expected_label_sum, result
        assert result[scheme]["files"] == 2, result
    assert result["runtime_endpoint"] == proxy.endpoint
    # Spark's default commit (FileOutputCommitter v1) renames = copies on S3A: the count a later commit must beat
    assert counted["copy"] > 0, counted
    print(f"spark parquet writes through the proxy: {dict(counted)}")


def test_read_files_overlaps_requests_up_to_the_bound_in_order(s3, clean_aws_env):
    from dataset.reads import read_files

    with LatencyProxy("127.0.0.1", s3.port, delay_ms=200) as proxy:
        fs = s3_filesystem(s3.env(proxy.endpoint))
        paths = [f"{s3.bucket}/reads/{i:02d}.bin" for i in range(12)]
        fs.pipe({p: bytes([i]) * (i + 1) for i, p in enumerate(paths)})
        wanted = [*paths[:5], f"{s3.bucket}/reads/missing.bin", *paths[5:]]
        proxy.reset()
        got = list(read_files(fs, wanted, concurrency=4))
        assert proxy.peak_in_flight == 4  # overlapped, and never more than the bound
        assert [p for p, _ in got] == wanted
        assert isinstance(got[5][1], FileNotFoundError)
        assert [d for _, d in got[:5] + got[6:]] == [bytes([i]) * (i + 1) for i in range(12)]
        proxy.reset()
        assert [d for _, d in read_files(fs, paths[:3], concurrency=1)] == [b"\x00", b"\x01" * 2, b"\x02" * 3]
        assert proxy.peak_in_flight == 1


def test_list_files_lists_label_folders_in_parallel_as_a_serial_find_does(s3, clean_aws_env, monkeypatch):
    from dataset.fs import filesystem, list_files

    for key, value in s3.env().items():
        monkeypatch.setenv(key, value)
    fs = s3_filesystem(s3.env())
    names = ["top.jpg", "a/1.jpg", "a/deep/er/2.png", "b/3.jpg", "b/4.jpg", "c d/5.jpg", "e/f/6.jpg"]
    for i, name in enumerate(names):
        fs.pipe(f"{s3.bucket}/listing/{name}", b"x" * (i + 1))
    fs.pipe(f"{s3.bucket}/listing-other/a/9.jpg", b"not under the root")
    serial = sorted(
        (path[len(f"{s3.bucket}/listing/") :], info["size"])
        for path, info in fs.find(f"{s3.bucket}/listing", detail=True, withdirs=False).items()
    )
    listed = list_files(f"s3://{s3.bucket}/listing")
    assert [(f.relpath, f.size) for f in listed] == serial
    assert [f.relpath for f in listed] == sorted(names)
    assert [f.size for f in listed] == [names.index(f.relpath) + 1 for f in listed]
    store = filesystem(f"s3://{s3.bucket}/listing")[0]  # its listing cache keeps no folder's objects
    assert not [key for key in store.dircache if key.startswith(f"{s3.bucket}/listing/")], list(store.dircache)
