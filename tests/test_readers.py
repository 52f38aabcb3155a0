"""Readers of other ecosystems over the same shards and `.idx` indexes: the `tfrecord` package (PyTorch side,
`dataset.torch_reader`) split across 2 DataLoader-style workers, a CPU-only DALI pipeline, and random access
(`dataset.random_access.read_records`) on local disk and on the S3-compatible server; every record equal to
tf.data's."""

from __future__ import annotations

import os
import pickle
import random
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from conversion.images.convert import convert_images
from conversion.images.options import ImageConvertOptions
from dataset.errors import DatasetError
from dataset.layout import DatasetFolder, version_file
from dataset.manifest import shard_urls
from dataset.object_store import s3_filesystem
from dataset.random_access import IndexCache, SplitReader, read_record, read_records, record_spans
from dataset.torch_reader import worker_examples, worker_shards
from dataset.versions import read_manifest
from jobs import convert_table
from tests.images import image_bytes, write
from tests.latency_proxy import LatencyProxy
from tests.s3server import s3_bucket_fixture

REPO = Path(__file__).resolve().parent.parent
CHILD_TIMEOUT_S = 300  # a bound for a hung child, never a figure
s3 = s3_bucket_fixture(scope="module")


@pytest.fixture(scope="module")
def images(spark, tmp_path_factory) -> str:
    """2 labels x 7 PNGs, train/test over 3 shards each: shards of 0, 1 and more records."""
    root = tmp_path_factory.mktemp("readers-in")
    for label in ("a", "b"):
        for i in range(7):
            write(root, f"{label}/{i}.png", image_bytes("PNG", (8 + i, 9), seed=i + 10 * (label == "b")))
    out = tmp_path_factory.mktemp("readers-img") / "data"
    convert_images(
        spark, ImageConvertOptions(str(root), str(out), splits=(("train", 0.75), ("test", 0.25)), num_shards=3)
    )
    return str(out)


@pytest.fixture(scope="module")
def table(spark, tmp_path_factory) -> str:
    """20 rows: an int key, a float, a string, an int left empty in every third row (left out of its record, read
    as -1)."""
    folder = tmp_path_factory.mktemp("readers-tab")
    csv = folder / "rows.csv"
    rows = [f"{i},{i * 0.25},n{i},{'' if i % 3 == 0 else 20 + i},{'xy'[i % 2]}\n" for i in range(20)]
    csv.write_text("id,x,name,age,label\n" + "".join(rows))
    out = folder / "table"
    argv = ["--input", str(csv), "--output", str(out), "--label", "label", "--key", "id", "--num-shards", "2"]
    assert convert_table.main([*argv, "--null-default", "age=-1"]) == 0  # not 0: a reader that ignores it shows
    return str(out)


def child(side: str, data: str, split: str, count: int, tmp_path: Path) -> dict:
    """Run tests/reader_child.py (no TensorFlow in that process) and return what it pickled."""
    out = tmp_path / f"{side}-{split}.pickle"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run(
        [sys.executable, "-m", "tests.reader_child", side, data, split, str(count), str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    with open(out, "rb") as f:
        got = pickle.load(f)
    assert got.pop("tensorflow_imported") is False
    return got


def tf_shards(data: str, split: str) -> list[list[bytes]]:
    """Each shard's serialized records as tf.data reads them, shard by shard in manifest order."""
    import tensorflow as tf

    return [[r.numpy() for r in tf.data.TFRecordDataset(url)] for url in shard_urls(data, read_manifest(data), split)]


def tf_parsed(data: str, records: list[bytes]) -> list[dict]:
    """`records` parsed by `tf.io.parse_single_example` with the manifest's spec, as numpy (sparse: its values)."""
    import tensorflow as tf

    spec = read_manifest(data).tf_feature_spec()
    rows = []
    for record in records:
        parsed = tf.io.parse_single_example(record, spec)
        rows.append({k: (v.values if isinstance(v, tf.SparseTensor) else v).numpy() for k, v in parsed.items()})
    return rows


def worker_share(shards: list[list[bytes]], worker: int, workers: int) -> list[bytes]:
    """What worker `worker` of `workers` must read: records [N*w//n, N*(w+1)//n) of each shard, in order."""
    return [r for s in shards for r in s[len(s) * worker // workers : len(s) * (worker + 1) // workers]]


def assert_rows_equal(got: list[dict], want: list[dict]) -> None:
    assert len(got) == len(want)
    for row, expected in zip(got, want):
        assert sorted(row) == sorted(expected)
        for key, value in expected.items():
            assert type(row[key]) is type(value), key  # bytes, a numpy scalar or an array, as TF gives
            if isinstance(value, bytes):
                assert row[key] == value, key
            else:
                assert (row[key].dtype, row[key].shape, row[key].tolist()) == (value.dtype, value.shape, value.tolist())


@pytest.mark.needs_tf
@pytest.mark.parametrize("kind", ["images", "table"])
def test_tfrecord_package_reads_each_record_once_over_two_workers(kind, images, table, tmp_path):
    data = images if kind == "images" else table
    manifest = read_manifest(data)
    sizes = Counter(f.num_records for s in manifest.splits.values() for f in s.files)
    assert sizes[1] and any(n >= 2 for n in sizes), sizes  # a 1-record shard is read without its index
    if kind == "images":
        assert set(manifest.splits) == {"train", "test"}
    else:
        assert manifest.features["age"].null_count == 7 and manifest.features["age"].default == -1
    for split in manifest.splits:
        shards = tf_shards(data, split)
        records = [r for s in shards for r in s]
        assert len(records) == manifest.splits[split].num_records > 0
        got = child("tfrecord", data, split, 2, tmp_path)
        assert got["records"] == [worker_share(shards, w, 2) for w in range(2)]
        assert Counter(got["records"][0] + got["records"][1]) == Counter(records)  # each once
        if split == "train":
            assert all(got["records"])  # both workers had work
        for w in range(2):
            assert_rows_equal(got["examples"][w], tf_parsed(data, worker_share(shards, w, 2)))


@pytest.mark.needs_tf
def test_dali_cpu_pipeline_reads_each_split_through_the_indexes(images, tmp_path):
    import tensorflow as tf

    for split, size in (("train", 10), ("test", 4)):  # test: shards of 1, 1 and 2 records (one-line indexes)
        records = [r for s in tf_shards(images, split) for r in s]
        want = [(row["image/encoded"], int(row["image/class/label"])) for row in tf_parsed(images, records)]
        got = child("dali", images, split, 2, tmp_path)
        assert got["epoch_size"] == len(records) == size
        # DALI shards the concatenated records of all files: shard s reads [N*s//2, N*(s+1)//2)
        assert got["shards"] == [want[: size // 2], want[size // 2 :]]
        assert tf.io.decode_png(got["shards"][1][0][0]).shape[2] == 3


def test_worker_shards_refuse_in_one_line(images, tmp_path, s3):
    manifest = read_manifest(images)
    with pytest.raises(ValueError, match=r"^worker 2 of 2: a worker is 0\.\.1$"):
        worker_shards(images, manifest, "train", 2, 2)
    with pytest.raises(DatasetError, match=r"^s3://\S+ is not on local disk: the tfrecord package reads local files"):
        worker_shards(f"s3://{s3.bucket}/x", manifest, "train", 0, 2)
    with pytest.raises(DatasetError, match=r"^\S+ has no feature 'image/nope'; it has image/channels, "):
        next(worker_examples(images, "train", keys=("image/encoded", "image/nope")))
    gz = tmp_path / "gz"
    shutil.copytree(images, gz)
    gzipped = replace(read_manifest(str(gz)), compression="gzip")
    with pytest.raises(DatasetError, match=r"holds gzip shards: they have no index to split them across workers"):
        worker_shards(str(gz), gzipped, "train", 0, 2)


def walked(data: str, split: str) -> list[bytes]:
    return [r for s in tf_shards(data, split) for r in s]


@pytest.mark.needs_tf
def test_read_records_batched_with_each_index_read_once(images, tmp_path):
    records = walked(images, "train")
    ks = random.Random(7).choices(range(len(records)), k=25) + [len(records) - 1, 0, 0]
    cache = IndexCache()
    assert read_records(images, "train", ks, cache=cache) == [records[k] for k in ks]
    non_empty = sum(1 for f in read_manifest(images).split("train").files if f.num_records)
    assert cache.reads == non_empty  # every shard touched, each index read once
    assert read_records(images, "train", [3, 1], cache=cache) == [records[3], records[1]]
    assert cache.reads == non_empty  # cached
    assert read_records(images, "train", []) == []
    assert read_record(images, "test", 0) == walked(images, "test")[0]
    with pytest.raises(
        DatasetError, match=rf"^split 'train' of \S+ has {len(records)} records, not {len(records) + 1}$"
    ):
        read_records(images, "train", [0, len(records)])
    small = IndexCache(capacity=1)  # the least recently used index goes first
    first, last = 0, len(records) - 1
    read_records(images, "train", [first, last, first], cache=small)
    assert (small.reads, len(small._spans)) == (3, 1)


def test_split_reader_is_a_map_style_dataset_that_survives_pickling(images):
    records = walked(images, "train")
    reader = SplitReader(images, "train", cache=IndexCache())
    assert (len(reader), reader.version) == (len(records), 1)
    assert [reader[k] for k in range(len(reader))] == records
    copy = pickle.loads(pickle.dumps(reader))  # what a DataLoader worker gets
    assert copy.cache.reads == 0 and copy[len(records) - 1] == records[-1] and copy.cache.reads == 1
    with pytest.raises(DatasetError, match=r"^split 'nope' is not in the dataset; it has test, train$"):
        SplitReader(images, "nope")


def test_read_records_names_a_shard_that_is_gone(images, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(images, copy)
    shard = next(f for f in read_manifest(str(copy)).split("train").files if f.num_records)
    (copy / shard.path).unlink()
    with pytest.raises(
        DatasetError, match=r"^shard \S+\.tfrecord of version 1 is gone \(vacuumed\?\); read the current"
    ):
        read_records(str(copy), "train", [0])


@pytest.mark.needs_tf
def test_read_records_on_the_object_store_one_ranged_get_per_record(s3, images, monkeypatch):
    s3_filesystem(s3.env()).put(images, f"{s3.bucket}/img", recursive=True)
    records = walked(images, "train")
    ks = [len(records) - 1, 0, 4, 4, 1]
    url = f"s3://{s3.bucket}/img"
    touched = {span.shard for span in record_spans(DatasetFolder(images), read_manifest(images), "train", ks)}
    assert len(touched) >= 2
    with LatencyProxy(s3.host, s3.port) as proxy:
        for key, value in s3.env(proxy.endpoint).items():
            monkeypatch.setenv(key, value)
        cache = IndexCache()
        for round_ in range(2):
            proxy.reset()
            assert read_records(url, "train", ks, cache=cache) == [records[k] for k in ks]
            gets = [r for r in proxy.requests() if r.kind == "get"]
            ranged = [r for r in gets if "range" in r.headers and ".tfrecord" in r.target]
            assert len(ranged) == len(ks)
            indexes = [r for r in gets if r.target.endswith(".idx")]
            assert len(indexes) == (len(touched) if round_ == 0 else 0)
        proxy.reset()
        reader = SplitReader(url, "train", cache=cache)  # the current version: one listing, one GET of its file
        listing, version = proxy.requests()
        assert (listing.kind, version.kind) == ("list", "get") and version.target.endswith(f"/img/{version_file(1)}")
        proxy.reset()
        assert reader[4] == records[4]
        [request] = proxy.requests()  # the manifest read already, the index cached: one ranged GET
        assert request.kind == "get" and ".tfrecord" in request.target and "range" in request.headers
