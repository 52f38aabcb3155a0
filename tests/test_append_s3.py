"""`convert_images --mode append` with input and dataset on an S3-compatible server on loopback (S3Proxy 4.0.0):
stamps are ETags from the listing, a same-size change is seen, old shards stay byte for byte, a killed append
leaves the current version whole."""

from __future__ import annotations

import hashlib

import pytest

from conversion.images.convert import convert_images
from dataset.file_index import read_index
from dataset.object_store import s3_filesystem
from dataset.versions import read_version
from tests.example_reader import tfrecords
from tests.s3server import s3_bucket_fixture
from tests.test_append_images import kill_mid_append, options, png, records

s3 = s3_bucket_fixture(scope="module")


@pytest.fixture
def store(s3, spark, monkeypatch):
    """This process and the Python workers of its Spark jobs pointed at the server."""
    saved = dict(spark.sparkContext.environment)
    for key, value in s3.env().items():
        monkeypatch.setenv(key, value)
    spark.sparkContext.environment.update(s3.env())
    yield s3_filesystem()
    spark.sparkContext.environment.clear()
    spark.sparkContext.environment.update(saved)


def same_size_png(like: bytes) -> bytes:
    """Another 8x8 PNG of exactly `like`'s size: only the ETag tells them apart."""
    return next(data for seed in range(900, 1100) if len(data := png(seed)) == len(like) and data != like)


@pytest.mark.slow
def test_appends_on_the_store_see_etag_changes_keep_old_shards_and_survive_a_kill(s3, store, spark):
    fs = store
    raw, data = f"s3://{s3.bucket}/raw", f"s3://{s3.bucket}/ds"

    def upload(files: dict[str, bytes]) -> None:
        for relpath, body in files.items():
            fs.pipe_file(f"{s3.bucket}/raw/{relpath}", body)

    def read(path: str) -> list[bytes]:
        return tfrecords(fs.cat_file(f"{s3.bucket}/ds/{path}"))

    first = {f"{label}/{i}.png": png(300 * len(label) + i) for label in ("cat", "dog") for i in range(6)}
    upload(first)
    convert_images(spark, options(raw, data))
    v1 = read_version(data)
    rows = {r["relpath"]: r for r in read_index(data, v1.manifest).table.to_pylist()}
    assert {p: (r["size"], r["stamp"]) for p, r in rows.items()} == {
        p: (len(body), hashlib.md5(body).hexdigest()) for p, body in first.items()
    }  # the ETag of a single PUT is the MD5 of its body

    shards = {f.path for info in v1.manifest.splits.values() for f in info.files}
    before = {path: fs.cat_file(f"{s3.bucket}/ds/{path}") for path in shards}
    changed = same_size_png(first["cat/2.png"])
    upload({"cat/2.png": changed, "cat/6.png": png(310), "dog/6.png": png(311)})
    convert_images(spark, options(raw, data, on_change="replace"))
    v2 = read_version(data)
    assert v2.info.removed == (rows["cat/2.png"]["shard"],)  # only the shard that held the changed file
    for path in shards - {rows["cat/2.png"]["shard"]}:
        assert fs.cat_file(f"{s3.bucket}/ds/{path}") == before[path]
    now = {r[1]: r for r in records(data, read=read)}
    assert now["cat/2.png"][2] == hashlib.sha256(changed).hexdigest()
    assert set(now) == {*first, "cat/6.png", "dog/6.png"}
    assert convert_images(spark, options(raw, data)).text() == (
        f"nothing new under {raw} since version 2; nothing committed"
    )

    upload({f"dog/late-{i}.png": png(320 + i) for i in range(3)})
    expected = records(data, read=read)

    def paused() -> bool:
        fs.invalidate_cache()
        return bool(fs.glob(f"{s3.bucket}/ds/run-*/_paused"))

    kill_mid_append(raw, data, s3.env(), paused)
    fs.invalidate_cache()
    assert read_version(data).number == 2 and records(data, read=read) == expected  # current and whole
    convert_images(spark, options(raw, data))
    v3 = read_version(data)
    assert v3.number == 3 and v3.info.operation == "append"
    assert {r[1] for r in records(data, read=read)} - set(now) == {f"dog/late-{i}.png" for i in range(3)}
