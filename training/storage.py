"""Training with `--data` and `--model-dir` on an object store, through local disk.

TensorFlow here reads no ``s3://`` (tensorflow-io aborts every process at exit, see
docs/object_store_findings.md §5), so:

* each rank fetches the shards it reads (its share of a split) into a local temporary folder: streamed while it trains,
  a bounded window at a time (training/streaming.py), or with --copy-first all of them before tf.data opens them;
* rank 0 trains into a local model_dir, uploaded to the store after every checkpoint and after the export;
* a resumed run first fetches the store's latest checkpoint into that local folder (the driver too, for its step).

Local (and other TF-readable) URLs are used as they are: nothing is copied.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import posixpath
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from dataset.fs import filesystem
from dataset.manifest import Manifest, shard_urls
from dataset.object_store import is_s3_url
from training.config import COPY_FIRST, StreamOptions
from training.input import InputSpec, rank_files

CHECKPOINT_STATE = "checkpoint"  # tf.train's file naming the latest checkpoint
LAST_UPLOADED = (CHECKPOINT_STATE, "saved_model.pb")  # what readers look for first goes up last


def needs_staging(url: str) -> bool:
    """Whether TensorFlow cannot open `url` here, so it goes through local disk (``s3://``, ``s3a://``)."""
    return is_s3_url(url)


def fetch_checkpoint(url: str, local: str) -> list[str]:
    """Copy the latest checkpoint of the model_dir `url` (its state file, data, index, meta and graph.pbtxt) into
    the folder `local`; returns the names copied (none when `url` holds no checkpoint)."""
    import tensorflow as tf

    fs, root = filesystem(url)
    fs.invalidate_cache(root)  # another process (rank 0 of an earlier run) wrote it
    if not fs.exists(f"{root}/{CHECKPOINT_STATE}"):
        return []
    fs.get_file(f"{root}/{CHECKPOINT_STATE}", os.path.join(local, CHECKPOINT_STATE))
    state = tf.train.get_checkpoint_state(local)
    latest = posixpath.basename(state.model_checkpoint_path) if state and state.model_checkpoint_path else None
    names = [posixpath.basename(p.rstrip("/")) for p in fs.ls(root, detail=False)]
    wanted = sorted(n for n in names if n == "graph.pbtxt" or (latest and n.startswith(f"{latest}.")))
    fs.get([f"{root}/{n}" for n in wanted], [os.path.join(local, n) for n in wanted])
    return [CHECKPOINT_STATE, *wanted]


@contextlib.contextmanager
def local_view_of(model_dir: str, fetch: bool = True) -> Iterator[str]:
    """`model_dir` itself when TensorFlow reads it; else a temporary local folder (removed on exit) holding the
    store's latest checkpoint when `fetch`."""
    if not needs_staging(model_dir):
        yield model_dir
        return
    local = tempfile.mkdtemp(prefix="model_dir-")
    try:
        if fetch:
            fetch_checkpoint(model_dir, local)
        yield local
    finally:
        shutil.rmtree(local, ignore_errors=True)


class DirSync:
    """Uploads a local model_dir to its URL on the store: files new or changed since the last call only, the
    checkpoint state and SavedModel markers last (a reader never sees them before what they name)."""

    def __init__(self, local: str, url: str) -> None:
        self.local, self.url = local, url
        self._sent: dict[str, tuple[int, int]] = {}  # relative path → (mtime_ns, size) uploaded

    def __call__(self) -> int:
        """Upload what changed; returns the number of files sent."""
        root = Path(self.local)
        changed = []
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            rel, info = path.relative_to(root).as_posix(), path.stat()
            if self._sent.get(rel) != (info.st_mtime_ns, info.st_size):
                changed.append((rel, (info.st_mtime_ns, info.st_size)))
        if not changed:
            return 0
        fs, base = filesystem(self.url)
        for last in (False, True):
            batch = [(rel, stamp) for rel, stamp in changed if (posixpath.basename(rel) in LAST_UPLOADED) == last]
            if batch:
                fs.put([str(root / rel) for rel, _ in batch], [f"{base}/{rel}" for rel, _ in batch])
                self._sent.update(batch)
        return len(changed)

    def store_path(self, local_path: str) -> str:
        """The URL on the store of a path under the local folder (e.g. the export)."""
        return f"{self.url.rstrip('/')}/{Path(local_path).relative_to(self.local).as_posix()}"


def checkpoint_listener(sync: DirSync):
    """A `CheckpointSaverListener` that uploads the model_dir after every checkpoint (resume after a crash)."""
    import tensorflow as tf

    class _Upload(tf.estimator.CheckpointSaverListener):
        def after_save(self, session, global_step_value) -> None:
            sync()

    return _Upload()


class ShardStaging:
    """The shards a rank reads, as local files at their paths in the dataset under a local folder (none when the data
    is local): a version's shards sit in several run folders, under the same file names. Streamed (`options`) or
    copied first; `sizes` (URL → bytes, from the manifest) checks each streamed download."""

    def __init__(
        self, data: str, folder: str | None, options: StreamOptions = COPY_FIRST, sizes: dict[str, int] | None = None
    ) -> None:
        self.data, self.folder, self.options, self.sizes = data, folder, options, dict(sizes or {})

    @property
    def streams(self) -> bool:
        """Whether the shards are fetched while tf.data reads them."""
        return self.folder is not None and not self.options.copy_first

    def rank_spec(self, spec: InputSpec, rank: int, num_ranks: int) -> tuple[InputSpec, tuple[str, ...]]:
        """`spec` reading local copies, and the files this rank reads (the rest of the split keeps its place in the
        list under a local name that is never opened: the ranks pick their files by position). Copy-first: this
        rank's files are copied now; streaming: the spec's feed fetches them while tf.data reads.

        Returns:
            (the spec to read, the files of it that this rank reads).
        """
        own = rank_files(spec.files, rank, num_ranks)
        if self.folder is None:
            return spec, own
        from dataset.object_store import local_paths, s3_filesystem, stage_to_local
        from training.streaming import ShardFeed

        local = dict(zip(spec.files, local_paths(spec.files, self.folder, self.data)))
        if self.options.copy_first:
            stage_to_local([u for u in own if not os.path.exists(local[u])], self.folder, root=self.data)
        urls = {local[u]: u for u in own}
        sizes = {local[u]: self.sizes[u] for u in own if u in self.sizes}
        feed = ShardFeed(urls, sizes, self.options, None if self.options.copy_first else s3_filesystem)
        spec = dataclasses.replace(spec, files=tuple(local[u] for u in spec.files), feed=feed)
        return spec, tuple(local[u] for u in own)

    def scannable(self, spec: InputSpec, own: tuple[str, ...]) -> tuple[str, ...]:
        """The shards to scan for the one a tf.data error came from: all of the spec's files when they are local
        (cheap, and a rank's error may surface on another), this rank's copies when copied, the files on disk now
        when streamed (a file is deleted only after it was read to its end)."""
        if self.folder is None:
            return spec.files
        on_disk = spec.feed.on_disk() if spec.feed is not None else None
        return own if on_disk is None else on_disk

    @contextlib.contextmanager
    def reading(self, spec: InputSpec) -> Iterator[InputSpec]:
        """`spec` while tf.data reads it; then its feed stops and its files are deleted."""
        try:
            yield spec
        finally:
            if spec.feed is not None:
                spec.feed.close()

    def splits_folder(self, manifest: Manifest, splits: tuple[str, ...]) -> str:
        """A dataset URL whose shards of `splits` tf.data reads: `data` itself, or the local folder holding copies
        of all of them (the driver's --skip-undecodable scan)."""
        if self.folder is None:
            return self.data
        from dataset.object_store import local_paths, stage_to_local

        urls = [url for split in dict.fromkeys(splits) for url in shard_urls(self.data, manifest, split)]
        local = local_paths(urls, self.folder, self.data)
        stage_to_local([u for u, p in zip(urls, local) if not os.path.exists(p)], self.folder, root=self.data)
        return self.folder


def shard_sizes(data: str, manifest: Manifest) -> dict[str, int]:
    """URL → size in bytes of every shard of the dataset's version, as its manifest records them."""
    return {
        url: shard.bytes
        for name, split in manifest.splits.items()
        for url, shard in zip(shard_urls(data, manifest, name), split.files)
        if shard.bytes  # 0: not recorded
    }


@contextlib.contextmanager
def shard_staging(
    data: str, options: StreamOptions = COPY_FIRST, manifest: Manifest | None = None
) -> Iterator[ShardStaging]:
    """A `ShardStaging` for the dataset `data` (its shards' sizes from `manifest`), its folder removed on exit."""
    if not needs_staging(data):
        yield ShardStaging(data, None)
        return
    folder = tempfile.mkdtemp(prefix="shards-")
    try:
        yield ShardStaging(data, folder, options, shard_sizes(data, manifest) if manifest is not None else None)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def write_text(url: str, text: str) -> None:
    """Write a small file (metrics.json) to `url`: fsspec on the store, tf.io.gfile elsewhere (as before)."""
    if needs_staging(url):
        fs, path = filesystem(url)
        fs.pipe_file(path, text.encode("utf-8"))
        return
    import tensorflow as tf

    with tf.io.gfile.GFile(url, "w") as out:
        out.write(text)
