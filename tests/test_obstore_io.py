"""dataset/obstore_io.py against the shared S3Proxy 4.0.0: obstore serves the hot paths (reads, downloads, uploads,
listings) with exactly the bytes, names, sizes and stamps s3fs gives, and hands s3fs whatever it cannot serve so.

Which client made a request is told by its User-Agent, as the counting proxy saw it.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote

import pytest

from dataset import obstore_io
from dataset.fs import list_files
from dataset.object_store import (
    client_env,
    object_store_from_env,
    s3_filesystem,
    s3fs_storage_options,
    stage_to_local,
    sync_dir_to_store,
)
from dataset.reads import read_files
from tests.latency_proxy import LatencyProxy
from tests.s3server import s3_bucket_fixture

s3 = s3_bucket_fixture(scope="module")


@pytest.fixture(scope="module", autouse=True)
def obstore_installed():
    """These tests need obstore (requirements.lock); without it they fail saying so, they never skip."""
    try:
        import obstore  # noqa: F401
    except ImportError:
        pytest.fail("obstore is not installed: run `make` (requirements.lock pins obstore and arro3-core)")


AWS_VARS = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", obstore_io.OBSTORE_VARIABLE)  # fmt: skip
ODD_KEYS = ["odd/a//b.jpg", "odd/tab\tname.jpg", "odd/dot/./x.jpg"]  # keys obstore's paths refuse or rewrite


@pytest.fixture
def proxy(s3, monkeypatch):
    """This process pointed at the server through a counting proxy (only the variables a job would have)."""
    for name in AWS_VARS:
        monkeypatch.delenv(name, raising=False)
    with LatencyProxy("127.0.0.1", s3.port) as counting:
        for key, value in s3.env(counting.endpoint).items():
            monkeypatch.setenv(key, value)
        yield counting


def by_client(proxy: LatencyProxy) -> dict[str, list[str]]:
    """`{"obstore": [...], "botocore": [...]}`: the `<kind> <target>` of each request, by the client that sent it."""
    out: dict[str, list[str]] = {"obstore": [], "botocore": []}
    for request in proxy.requests():
        agent = request.headers.get("user-agent", "")
        client = "obstore" if agent.startswith("object_store") else "botocore" if "botocore" in agent else agent
        out.setdefault(client, []).append(f"{request.kind} {unquote(request.target.split('?')[0])}")
    return out


def test_settings_come_from_the_standard_variables_and_s3fs_options_alike():
    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9000/", "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s",
           "AWS_SESSION_TOKEN": "t", "AWS_REGION": "eu-west-1"}  # fmt: skip
    config = obstore_io.config_from_env("bucket", env)
    assert config == obstore_io.StoreConfig("bucket", "http://127.0.0.1:9000", "eu-west-1", "k", "s", "t")
    fs = s3_filesystem(env)
    assert obstore_io.config_from_s3fs(fs, "bucket") == config
    assert "'s'" not in repr(config) and "'k'" not in repr(config) and "'t'" not in repr(config)
    # no keys in the variables: botocore's own chain (profiles, instance roles) is s3fs's to follow
    assert obstore_io.config_from_env("bucket", {"AWS_REGION": "eu-west-1"}) is None
    assert obstore_io.config_from_s3fs(s3_filesystem(env, anon=True), "bucket") is None
    assert obstore_io.config_from_env("bucket", {**env, obstore_io.OBSTORE_VARIABLE: "0"}) is None
    # the choice reaches Spark's Python workers and Horovod ranks with the other variables
    assert client_env({**env, obstore_io.OBSTORE_VARIABLE: "0"})[obstore_io.OBSTORE_VARIABLE] == "0"
    assert obstore_io.OBSTORE_VARIABLE not in client_env(env)
    assert object_store_from_env(env).endpoint_url == config.endpoint_url
    assert s3fs_storage_options(env)["client_kwargs"]["region_name"] == config.region


def test_plain_keys_and_paths():
    assert [obstore_io.plain_key(k) for k in ["a/b.jpg", "c d/ü%20+#?.jpg", ".hidden", "a/", "/a", "a//b", "a/./b",
                                             "a/../b", "tab\t.jpg", ""]] == [True] * 3 + [False] * 7  # fmt: skip
    assert obstore_io.split_path("s3a://b/k/x.png") == ("b", "k/x.png") == obstore_io.split_path("b/k/x.png")


def test_reads_go_through_obstore_and_odd_keys_and_errors_through_s3fs(s3, proxy):
    fs = s3_filesystem()
    keys = [f"reads/{i:02d} ü%20.bin" for i in range(6)] + ODD_KEYS
    for i, key in enumerate(keys):
        fs.pipe_file(f"{s3.bucket}/{key}", bytes([i]) * (100 + i))
    paths = [f"{s3.bucket}/{key}" for key in keys]
    missing = f"{s3.bucket}/reads/missing.bin"
    s3fs_error = fs.cat_file  # what the job reported before, for the same missing key
    with pytest.raises(FileNotFoundError) as expected:
        s3fs_error(missing)
    proxy.reset()
    got = list(read_files(fs, [*paths, missing], concurrency=4))
    assert [p for p, _ in got] == [*paths, missing]
    assert [d for _, d in got[:-1]] == [bytes([i]) * (100 + i) for i in range(len(keys))]
    error = got[-1][1]
    assert type(error) is FileNotFoundError and str(error) == str(expected.value)
    clients = by_client(proxy)
    assert sorted(clients["obstore"]) == sorted(f"get /{s3.bucket}/{key}" for key in [*keys[:6], "reads/missing.bin"])
    assert len(clients["botocore"]) == len(ODD_KEYS) + 1  # the odd keys, and the missing one again for its error
    proxy.reset()
    assert [d for _, d in read_files(fs, paths[:2], concurrency=1)] == [b"\x00" * 100, b"\x01" * 101]
    assert len(by_client(proxy)["obstore"]) == 2 and not by_client(proxy)["botocore"]


def test_reads_through_s3fs_when_turned_off(s3, proxy, monkeypatch):
    fs = s3_filesystem()
    fs.pipe_file(f"{s3.bucket}/off/a.bin", b"abc")
    monkeypatch.setenv(obstore_io.OBSTORE_VARIABLE, "0")
    proxy.reset()
    assert list(read_files(fs, [f"{s3.bucket}/off/a.bin"], concurrency=4)) == [(f"{s3.bucket}/off/a.bin", b"abc")]
    assert by_client(proxy) == {"obstore": [], "botocore": [f"get /{s3.bucket}/off/a.bin"]}


def _listed(url: str) -> list[tuple[str, int, str]]:
    listing = list_files(url)
    return [(f.relpath, f.size, stamp) for f, stamp in zip(listing, listing.stamps.to_pylist())]


def _s3fs_listed(url: str, monkeypatch) -> list[tuple[str, int, str]]:
    """What `list_files` gives through s3fs alone."""
    with monkeypatch.context() as patch:
        patch.setenv(obstore_io.OBSTORE_VARIABLE, "0")
        return _listed(url)


def test_listing_through_obstore_equals_s3fs_names_sizes_and_stamps(s3, proxy, monkeypatch):
    fs = s3_filesystem()
    names = ["top.jpg", "a/1.jpg", "a/deep/er/2.png", "b/3 ü.jpg", "b/4%20.jpg", "c d/5.jpg", "é/f/6.jpg"]
    names += [f"many/{i:04d}.png" for i in range(2_100)]  # three pages of 1,000
    fs.pipe({f"{s3.bucket}/listing/{name}": b"x" * (1 + i % 7) for i, name in enumerate(names)})
    fs.pipe(f"{s3.bucket}/listing-other/a/9.jpg", b"not under the root")
    root = f"{s3.bucket}/listing"
    proxy.reset()
    listed = _listed(f"s3://{root}")
    clients = by_client(proxy)
    assert clients["botocore"] == [] and len(clients["obstore"]) == 1 + 5 + 2  # root, 5 folders, 2 more pages
    assert listed == _s3fs_listed(f"s3://{root}", monkeypatch)
    assert [relpath for relpath, _, _ in listed] == sorted(names)
    assert [size for _, size, _ in listed] == [1 + names.index(relpath) % 7 for relpath, _, _ in listed]


def test_listing_with_a_zero_byte_object_or_a_folder_marker_is_s3fs_s(s3, proxy, monkeypatch):
    fs = s3_filesystem()
    root = f"{s3.bucket}/marked"
    fs.pipe({f"{root}/a/1.jpg": b"1", f"{root}/b/empty.jpg": b"", f"{root}/c/2.jpg": b"22"})
    fs.call_s3("put_object", Bucket=s3.bucket, Key="marked/c/", Body=b"")  # a folder marker, as consoles make
    proxy.reset()
    listed = _listed(f"s3://{root}")
    assert [(relpath, size) for relpath, size, _ in listed] == [("a/1.jpg", 1), ("b/empty.jpg", 0), ("c/2.jpg", 2)]
    # obstore lists the marker `c/` as a zero-byte object `c`: it lists all, and s3fs lists `b` and `c` again
    clients = by_client(proxy)
    assert clients == {"obstore": [f"list /{s3.bucket}"] * 4, "botocore": [f"list /{s3.bucket}"] * 2}, clients
    assert listed == _s3fs_listed(f"s3://{root}", monkeypatch)


def test_listing_a_missing_root_is_s3fs_s_one_line(s3, proxy):
    from dataset.errors import StorageError

    with pytest.raises(StorageError, match="does not exist or is not a folder"):
        list_files(f"s3://{s3.bucket}/nothing-here")


def test_stage_and_sync_through_obstore_with_exact_bytes(s3, proxy, tmp_path):
    fs = s3_filesystem()
    big = os.urandom(6 << 20)  # over obstore's 5 MiB part size: a multipart upload
    model = tmp_path / "model"
    (model / "export" / "1").mkdir(parents=True)
    (model / "export" / "1" / "saved_model.pb").write_bytes(big)
    (model / "checkpoint").write_text("model_checkpoint_path: 'model.ckpt-8'")
    proxy.reset()
    assert sync_dir_to_store(model, f"s3a://{s3.bucket}/runs/r1/model/") == 2
    assert fs.cat_file(f"{s3.bucket}/runs/r1/model/export/1/saved_model.pb") == big
    assert fs.cat_file(f"{s3.bucket}/runs/r1/model/checkpoint") == b"model_checkpoint_path: 'model.ckpt-8'"
    uploads = [r for r in by_client(proxy)["obstore"] if not r.startswith("get")]
    assert "put /{}/runs/r1/model/checkpoint".format(s3.bucket) in uploads and any(
        r.startswith("multipart") for r in uploads
    )
    proxy.reset()
    urls = [f"s3://{s3.bucket}/runs/r1/model/export/1/saved_model.pb", f"s3://{s3.bucket}/runs/r1/model/checkpoint"]
    local = stage_to_local(urls, tmp_path / "staged", root=f"s3://{s3.bucket}/runs/r1")
    assert local == [str(tmp_path / "staged" / "model" / "export" / "1" / "saved_model.pb"),
                     str(tmp_path / "staged" / "model" / "checkpoint")]  # fmt: skip
    assert Path(local[0]).read_bytes() == big and Path(local[1]).read_bytes().startswith(b"model_checkpoint_path")
    assert sorted(os.listdir(tmp_path / "staged" / "model")) == ["checkpoint", "export"]  # no .part file left
    assert len(by_client(proxy)["obstore"]) == 2 and not by_client(proxy)["botocore"]


def test_a_failed_download_leaves_s3fs_to_say_what_is_missing(s3, proxy, tmp_path):
    fs = s3_filesystem()
    fs.pipe_file(f"{s3.bucket}/some/here.bin", b"here")
    with pytest.raises(FileNotFoundError):
        stage_to_local([f"s3://{s3.bucket}/some/here.bin", f"s3://{s3.bucket}/some/gone.bin"], tmp_path / "d")
    assert not [name for name in os.listdir(tmp_path / "d") if name.endswith(".part")]


@pytest.fixture
def job_env(spark, proxy):
    """`proxy`, and the shared session's worker environment restored afterwards (a job points it at the store)."""
    saved = dict(spark.sparkContext.environment)
    yield proxy
    spark.sparkContext.environment.clear()
    spark.sparkContext.environment.update(saved)


def test_a_conversion_reads_its_images_in_tasks_through_obstore(s3, job_env):
    from dataset.versions import read_manifest
    from jobs import convert_images as convert_job
    from tests.images import image_bytes

    fs = s3_filesystem()
    images = {
        f"{label}/{i}.png": image_bytes("PNG", (8, 8), seed=i + 50 * (label == "b")) for label in "ab" for i in range(6)
    }
    fs.pipe({f"{s3.bucket}/raw/{relpath}": data for relpath, data in images.items()})
    out = f"s3://{s3.bucket}/datasets/x"
    job_env.reset()
    assert convert_job.main(["--input", f"s3://{s3.bucket}/raw", "--output", out, "--splits", "train=1"]) == 0
    clients = by_client(job_env)
    image_gets = sorted(r for r in clients["obstore"] if r.startswith(f"get /{s3.bucket}/raw/"))
    assert image_gets == sorted(f"get /{s3.bucket}/raw/{relpath}" for relpath in images)
    assert not [r for r in clients["botocore"] if r.startswith(f"get /{s3.bucket}/raw/")]
    assert read_manifest(out).num_records == len(images)
