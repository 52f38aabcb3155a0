"""What `validate` asks of an object store (S3Proxy on 127.0.0.1, through a counting proxy): one GET of each shard
and of its index, no HEAD of either, and no other request that grows with the number of shards; and that it still
names the shard, the byte and the record of damage it reads there."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from conversion.images.convert import convert_images
from conversion.images.options import ImageConvertOptions
from dataset.check import validate_dataset
from dataset.errors import DatasetError
from dataset.object_store import s3_filesystem
from dataset.versions import read_manifest
from tests.images import image_bytes, write
from tests.latency_proxy import LatencyProxy
from tests.s3server import s3_bucket_fixture

pytestmark = pytest.mark.needs_tf

s3 = s3_bucket_fixture(scope="module")


@pytest.fixture(scope="module")
def datasets(spark, s3, tmp_path_factory) -> dict[int, str]:
    """The same 24 PNGs converted with 1 and with 3 shards per split (train, test), uploaded: shards per split → URL."""
    root = tmp_path_factory.mktemp("reads")
    for label in ("x", "y"):
        for i in range(12):
            write(root / "in", f"{label}/{i}.png", image_bytes("PNG", (16, 16), seed=i + 100 * (label == "y")))
    fs = s3_filesystem(s3.env())
    urls = {}
    for shards in (1, 3):
        out = root / f"data{shards}"
        splits = (("train", 0.5), ("test", 0.5))
        convert_images(spark, ImageConvertOptions(str(root / "in"), str(out), splits=splits, num_shards=shards))
        files = [p for p in out.rglob("*") if p.is_file()]
        fs.put([str(p) for p in files], [f"{s3.bucket}/data{shards}/{p.relative_to(out).as_posix()}" for p in files])
        urls[shards] = f"s3://{s3.bucket}/data{shards}"
    return urls


@pytest.fixture
def proxy(s3, monkeypatch):
    """This process's S3 client pointed at the server through a counting proxy."""
    with LatencyProxy("127.0.0.1", s3.port) as counting:
        for key, value in s3.env(counting.endpoint).items():
            monkeypatch.setenv(key, value)
        yield counting


def requests_by_key(proxy: LatencyProxy, bucket: str) -> Counter:
    """(S3 kind, object key) of every request, counted; a listing counts under its prefix."""
    counted: Counter = Counter()
    for request in proxy.requests():
        parts = urlsplit(request.target)
        key = unquote(parts.path).removeprefix(f"/{bucket}").lstrip("/")
        if request.kind == "list":
            key = "list:" + next((q.split("=", 1)[1] for q in parts.query.split("&") if q.startswith("prefix=")), "")
        counted[(request.kind, unquote(key))] += 1
    return counted


def test_one_get_per_shard_and_index_and_nothing_else_per_shard(datasets, s3, proxy):
    other: dict[int, Counter] = {}
    for shards, url in datasets.items():
        manifest = read_manifest(url)
        files = [f for split in manifest.splits.values() for f in split.files]
        assert len(files) == 2 * shards and all(f.index for f in files)
        proxy.reset()
        report = validate_dataset(url)
        assert (report.num_shards, report.num_records, report.num_decoded) == (2 * shards, 24, 24)
        counted = requests_by_key(proxy, s3.bucket)
        prefix = url.removeprefix(f"s3://{s3.bucket}/")
        for f in files:
            for key in (f"{prefix}/{f.path}", f"{prefix}/{f.index}"):
                assert {kind: n for (kind, k), n in counted.items() if k == key} == {"get": 1}, key
        per_file = {f"{prefix}/{f.path}" for f in files} | {f"{prefix}/{f.index}" for f in files}
        other[shards] = Counter()
        for (kind, key), n in counted.items():
            if key not in per_file:
                other[shards][kind] += n
    # the rest is the same for 2 shards as for 6: the manifest, the versions for the note, one listing of the folder
    assert other[1] == other[3] and other[1]["list"] > 0, other


def test_damage_on_the_store_is_named_with_the_shard_url_and_the_byte(datasets, s3, proxy, tmp_path):
    url = datasets[3]
    fs = s3_filesystem()
    manifest = read_manifest(url)
    shard = manifest.splits["train"].files[1]
    copy = f"{s3.bucket}/damaged"
    source = url.removeprefix("s3://")
    for path in fs.find(source):
        fs.copy(path, copy + path.removeprefix(source))
    data = bytearray(fs.cat_file(f"{copy}/{shard.path}"))
    first = int.from_bytes(data[:8], "little") + 16  # record 1 starts here
    data[first + 12 + 3] ^= 0x01  # inside the data of record 1
    fs.pipe_file(f"{copy}/{shard.path}", bytes(data))
    with pytest.raises(
        DatasetError,
        match=rf"^corrupt shard s3://{copy}/{shard.path} at byte offset {first} \(after 1 good records\): "
        "the record CRC does not match$",
    ):
        validate_dataset(f"s3://{copy}")
    assert Path(shard.path).name.startswith("train-00001-of-00003")
