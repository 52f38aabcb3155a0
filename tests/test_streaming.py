"""Training that streams its shards from an S3-compatible server (S3Proxy on loopback) with bounded local disk
(training/streaming.py), against the copy-first path: the same records in the same order, the local disk high-water
mark within the window, a failed fetch tried again, a shard that stays missing named in one line."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import tensorflow as tf

from conversion.images.convert import convert_images
from conversion.images.options import ImageConvertOptions
from dataset.errors import TrainingError
from dataset.manifest import shard_urls
from dataset.object_store import s3_filesystem
from dataset.versions import read_manifest
from demo.data import generate_tree
from jobs import train
from tests.latency_proxy import LatencyProxy
from tests.s3server import s3_bucket_fixture
from training.config import COPY_FIRST, StreamOptions, TrainConfig
from training.input import InputSpec, file_order, python_file_order, train_input_fn
from training.run import run_training
from training.storage import shard_staging

pytestmark = pytest.mark.slow
s3 = s3_bucket_fixture(scope="module")
SHARDS = 16  # per split: 8 train shards per rank of 2, more than the window
WINDOW = 5
STEPS = 60


@pytest.fixture(scope="module")
def store(s3) -> Iterator:
    """This process (and the Horovod ranks it starts) pointed at the server."""
    with pytest.MonkeyPatch.context() as patch:
        for key, value in s3.env().items():
            patch.setenv(key, value)
        yield s3_filesystem()


@pytest.fixture(scope="module")
def dataset(spark, store, s3, tmp_path_factory) -> tuple[Path, str]:
    """4 labels x 100 shape PNGs converted into 16 shards per split, locally and copied to the server."""
    root = tmp_path_factory.mktemp("streaming")
    generate_tree(root / "images", per_label=100)
    local = root / "dataset"
    convert_images(spark, ImageConvertOptions(str(root / "images"), str(local), num_shards=SHARDS))
    files = sorted(p for p in local.rglob("*") if p.is_file())
    url = f"s3://{s3.bucket}/ds"
    store.put([str(p) for p in files], [f"{url}/{p.relative_to(local).as_posix()}" for p in files])
    return local, url


def _spec(files: list[str]) -> InputSpec:
    return InputSpec(tuple(files), "", parse=lambda batch: ({}, batch), threads=2, deterministic=True)


def _records(spec: InputSpec, rank: int, steps: int, seed: int) -> list[bytes]:
    batches = train_input_fn(spec, 8, steps, rank, 2, seed=seed, shuffle_buffer=16)()
    return [record for _, batch in batches.as_numpy_iterator() for record in batch]


def test_the_file_order_computed_in_python_is_the_graphs(dataset):
    local, _ = dataset
    files = tuple(str(local / f"f{i}") for i in range(7))
    for graph_seed, seed in ((0, 0), (3, 0), (0, 40), (3, 41)):
        with tf.Graph().as_default() as graph:  # as the Estimator builds it: tf_random_seed, then the input_fn
            tf.compat.v1.set_random_seed(graph_seed)
            following = tf.compat.v1.data.make_one_shot_iterator(file_order(files, 1, 2, seed)).get_next()
            with tf.compat.v1.Session(graph=graph) as session:
                in_graph = [session.run(following).decode() for _ in range(12)]
        in_python = python_file_order(files, 1, 2, seed, graph_seed)
        assert [next(in_python) for _ in range(12)] == in_graph
        assert sorted(in_graph[:3]) == sorted(in_graph[3:6]) == list(files[1::2])  # each epoch: this rank's 3 files
        assert len({tuple(in_graph[i : i + 3]) for i in (0, 3, 6, 9)}) > 1  # in a new order


def test_streamed_records_equal_copied_and_local_ones_in_order_within_the_window(dataset):
    local, url = dataset
    manifest = read_manifest(str(local))
    steps = 3 * 160 // 8  # three epochs of a rank's 8 shards (about 160 records)
    today = _records(_spec(shard_urls(str(local), manifest, "train", non_empty=True)), 1, steps, seed=5)
    urls = shard_urls(url, manifest, "train", non_empty=True)
    assert len(urls) == SHARDS and len(today) == steps * 8
    with shard_staging(url, COPY_FIRST, manifest) as staging:
        spec, own = staging.rank_spec(_spec(urls), 1, 2)
        with staging.reading(spec):
            copied = _records(spec, 1, steps, seed=5)
    assert copied == today
    with shard_staging(url, StreamOptions(window=WINDOW), manifest) as staging:
        spec, own = staging.rank_spec(_spec(urls), 1, 2)
        assert len(own) == 8 and not any(Path(p).exists() for p in own)  # nothing fetched before tf.data asks
        with staging.reading(spec):
            streamed = _records(spec, 1, steps, seed=5)
        stats = spec.feed.stats()
        assert not list(Path(staging.folder).rglob("*.tfrecord*"))  # every file deleted when reading ended
    assert streamed == today
    sizes = [shard.bytes for shard in manifest.splits["train"].files]
    assert stats.high_water_files <= WINDOW and stats.high_water_bytes <= WINDOW * max(sizes)
    assert stats.high_water_bytes < sum(sizes[1::2])  # less than the rank's share
    assert stats.fetched >= 2 * len(own) and stats.failed_tries == 0  # a share larger than the window: fetched again


def test_window_and_attempts_are_checked_and_the_flags_set_them():
    with pytest.raises(TrainingError, match="^--stream-window must be at least 5 shards .*got 4$"):
        StreamOptions(window=4)
    with pytest.raises(TrainingError, match="attempts must be at least 1"):
        StreamOptions(attempts=0)
    assert TrainConfig(data="d", model_dir="m").stream == StreamOptions(copy_first=False, window=8)
    args = train.build_parser().parse_args(["--data", "d", "--model-dir", "m", "--stream-window", "6"])
    assert (args.stream_window, args.copy_first, args.deterministic) == (6, False, False)
    args = train.build_parser().parse_args(["--data", "d", "--model-dir", "m", "--copy-first", "--deterministic"])
    assert (args.copy_first, args.deterministic) == (True, True)
    with pytest.raises(SystemExit):
        train.build_parser().parse_args(["--data", "d", "--model-dir", "m", "--copy-first", "--stream-window", "6"])


def _config(data: str, model_dir: Path, **changes) -> TrainConfig:
    values = dict(
        data=data,
        model_dir=str(model_dir),
        batch_size=16,
        max_steps=STEPS,
        eval_split="test",
        shuffle_buffer=64,
        checkpoint_steps=STEPS,
        summary_steps=20,
        export=False,
        deterministic=True,
    )
    values.update(changes)
    return TrainConfig(**values)


class FolderWatch:
    """Sums the bytes under each `shards-*` folder (one per rank) of `root` every few milliseconds; keeps the most."""

    def __init__(self, root: Path) -> None:
        self.root, self.most = root, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(0.005):
            for folder in self.root.glob("shards-*"):
                total = 0
                for path in folder.rglob("*"):
                    with contextlib.suppress(OSError):
                        total += path.stat().st_size if path.is_file() else 0
                self.most[folder.name] = max(self.most.get(folder.name, 0), total)

    def __enter__(self) -> FolderWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


@contextlib.contextmanager
def missing_until_asked(s3, store, url: str) -> Iterator[LatencyProxy]:
    """The object `url` is gone until a request for it reaches a proxy in front of the server; then it is put back
    (the ranks talk to the server through the proxy, whose endpoint is in their environment)."""
    body = store.cat_file(url)
    store.rm_file(url)
    key = url.split("://", 1)[1]
    with LatencyProxy("127.0.0.1", s3.port) as proxy, pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        done = threading.Event()

        def restore() -> None:
            while not done.wait(0.01):
                if any(key in request.target for request in proxy.requests()):
                    store.pipe_file(url, body)
                    return

        thread = threading.Thread(target=restore, daemon=True)
        thread.start()
        try:
            yield proxy
        finally:
            done.set()
            thread.join(10)
    assert store.cat_file(url) == body


def test_streaming_trains_like_copy_first_within_the_window_and_resumes(
    spark, dataset, store, s3, tmp_path, monkeypatch
):
    local, url = dataset
    manifest = read_manifest(str(local))
    urls = shard_urls(url, manifest, "train", non_empty=True)
    sizes = [shard.bytes for shard in manifest.splits["train"].files]
    copied = run_training(spark, _config(url, tmp_path / "copied", stream=COPY_FIRST), 2)
    assert "stream" not in copied.per_rank[0]

    monkeypatch.setenv("TMPDIR", str(tmp_path / "ranks"))  # where each rank's shards-* folder goes
    (tmp_path / "ranks").mkdir()
    options = StreamOptions(window=WINDOW, attempts=4, backoff_seconds=1.0)
    with missing_until_asked(s3, store, urls[2]) as proxy, FolderWatch(tmp_path / "ranks") as watch:
        streamed = run_training(spark, _config(url, tmp_path / "streamed", stream=options), 2)
    assert sum(r.target.endswith(urls[2].split("/", 3)[3]) for r in proxy.requests() if r.method == "GET") >= 2

    # the same records in the same order: the same weights and metrics, exactly
    assert streamed.metrics["eval"] == copied.metrics["eval"] and copied.metrics["eval"]["accuracy"] >= 0.5
    assert {r["weights_sha256"] for r in streamed.per_rank + copied.per_rank} == {copied.per_rank[0]["weights_sha256"]}
    stats = [r["stream"] for r in streamed.per_rank]
    assert stats[0]["failed_tries"] >= 1 and stats[1]["failed_tries"] == 0  # urls[2] is rank 0's: tried again
    for rank, stat in enumerate(stats):
        share = sum(sizes[rank::2])
        assert stat["high_water_files"] <= WINDOW and stat["high_water_bytes"] <= WINDOW * max(sizes) < share
        assert stat["fetched"] > 8  # a share larger than the window: files fetched again in later epochs
    assert len(watch.most) == 2 and max(watch.most.values()) <= WINDOW * max(sizes), watch.most
    summary = [{k: v for k, v in stat.items() if k != "fetch_seconds"} for stat in stats]
    print(f"streamed: {summary}; disk seen per rank: {watch.most}")

    resumed = run_training(spark, _config(url, tmp_path / "streamed", stream=options, max_steps=STEPS + 20), 2)
    assert resumed.metrics["steps_run"] == 20 and resumed.metrics["global_step"] == STEPS + 20
    assert all(r["stream"]["high_water_files"] <= WINDOW for r in resumed.per_rank)


def test_a_shard_that_stays_missing_stops_the_run_with_one_line(spark, dataset, store, tmp_path, capsys):
    local, url = dataset
    missing = shard_urls(url, read_manifest(str(local)), "train", non_empty=True)[3]
    body = store.cat_file(missing)
    store.rm_file(missing)
    try:
        start = time.monotonic()
        argv = ["--data", url, "--model-dir", str(tmp_path / "m"), "--num-proc", "2", "--batch-size", "16"]
        code = train.main([*argv, "--max-steps", "20", "--eval-split", "test", "--stream-window", str(WINDOW)])
        elapsed = time.monotonic() - start
    finally:
        store.pipe_file(missing, body)
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and elapsed < 150
    assert last.startswith(
        f"error: training failed: rank 1: dataset.errors.DatasetError: cannot fetch shard {missing} "
    )
    assert "after 4 attempts (FileNotFoundError" in last and "Traceback" not in last
    print(last)
