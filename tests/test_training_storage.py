"""Training's way through local disk on an object store (training/storage.py), on S3Proxy: which shards a rank
copies, which checkpoint files a resume fetches, what an upload sends; local URLs are used as they are."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dataset.object_store import s3_filesystem
from tests.s3server import s3_bucket_fixture
from training.input import InputSpec
from training.storage import DirSync, local_view_of, shard_staging

s3 = s3_bucket_fixture(scope="module")


@pytest.fixture
def store(s3, monkeypatch):
    for key, value in s3.env().items():
        monkeypatch.setenv(key, value)
    return s3_filesystem()


def _spec(files: list[str]) -> InputSpec:
    return InputSpec(tuple(files), "", parse=lambda batch: ({}, batch), threads=1)


def test_a_rank_copies_only_the_shards_it_reads_and_keeps_the_others_places(s3, store):
    urls = [f"s3://{s3.bucket}/ds/train-0000{i}-of-00003.tfrecord" for i in range(3)]
    for i, url in enumerate(urls):
        store.pipe(url, f"shard {i}".encode())
    with shard_staging(f"s3://{s3.bucket}/ds") as staging:
        spec, own = staging.rank_spec(_spec(urls), rank=1, num_ranks=2)
        folder = staging.folder
        assert [Path(f).name for f in spec.files] == [Path(u).name for u in urls]
        assert all(Path(f).parent == Path(folder) for f in spec.files)
        assert own == (spec.files[1],)
        assert sorted(os.listdir(folder)) == ["train-00001-of-00003.tfrecord"]
        assert Path(own[0]).read_bytes() == b"shard 1"
        # fewer shards than ranks: every rank reads (and copies) all of them
        _, own = staging.rank_spec(_spec(urls[:1]), rank=1, num_ranks=2)
        assert [Path(f).name for f in own] == ["train-00000-of-00003.tfrecord"]
        assert sorted(os.listdir(folder)) == ["train-00000-of-00003.tfrecord", "train-00001-of-00003.tfrecord"]
    assert not os.path.exists(folder)


def test_local_data_and_model_dir_are_used_as_they_are(tmp_path):
    files = [str(tmp_path / "train-00000-of-00002.tfrecord"), str(tmp_path / "train-00001-of-00002.tfrecord")]
    with shard_staging(str(tmp_path)) as staging:
        spec, own = staging.rank_spec(_spec(files), rank=0, num_ranks=2)
        assert staging.folder is None and spec.files == tuple(files) and own == (files[0],)
    with local_view_of(str(tmp_path / "model")) as local:
        assert local == str(tmp_path / "model")
    assert not (tmp_path / "model").exists()


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def test_a_resume_fetches_the_latest_checkpoint_only_and_an_upload_sends_what_changed(s3, store, tmp_path):
    model = tmp_path / "model"
    _write(
        model,
        {
            "checkpoint": 'model_checkpoint_path: "model.ckpt-20"\nall_model_checkpoint_paths: "model.ckpt-10"\n'
            'all_model_checkpoint_paths: "model.ckpt-20"\n',
            "model.ckpt-10.index": "old",
            "model.ckpt-10.data-00000-of-00001": "old",
            "model.ckpt-20.index": "i20",
            "model.ckpt-20.data-00000-of-00001": "d20",
            "model.ckpt-20.meta": "m20",
            "model.ckpt-200.index": "not the latest",
            "graph.pbtxt": "graph",
            "events.out.tfevents.1.host": "events",
            "export/17/saved_model.pb": "pb",
        },
    )
    url = f"s3://{s3.bucket}/models/m"
    sync = DirSync(str(model), url)
    assert sync() == 10
    assert sync() == 0  # nothing changed
    (model / "graph.pbtxt").write_text("graph, longer")
    assert sync() == 1
    assert store.cat(f"{url}/graph.pbtxt") == b"graph, longer"
    assert sync.store_path(str(model / "export" / "17")) == f"{url}/export/17"

    with local_view_of(url) as local:
        assert sorted(os.listdir(local)) == [
            "checkpoint",
            "graph.pbtxt",
            "model.ckpt-20.data-00000-of-00001",
            "model.ckpt-20.index",
            "model.ckpt-20.meta",
        ]
        assert Path(local, "model.ckpt-20.index").read_text() == "i20"
    assert not os.path.exists(local)
    with local_view_of(f"s3://{s3.bucket}/models/none") as empty:
        assert os.listdir(empty) == []
    with local_view_of(url, fetch=False) as unfetched:
        assert os.listdir(unfetched) == []
