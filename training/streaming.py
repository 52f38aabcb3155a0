"""Shards from an object store reach a training rank's tf.data while it trains, with bounded local disk.

TensorFlow here cannot open ``s3://`` (see training/storage.py), so a rank reads local copies. `ShardFeed` fetches
them in the order the rank reads them (training/input.py computes that order in Python from the same seeded file
pipeline), one at a time, at most `window` files on local disk at once counting the one being fetched:

* a download goes to ``<file>.part`` and is renamed when its size matches the manifest's;
* a failed download is tried again after a backoff (doubled each time); after the last attempt the feed holds one
  line naming the shard's URL, and tf.data's next request for a path raises it (`FetchFailed`);
* tf.data's interleave gets the places 0, 1, 2... of the order; each element waits until its file is on disk, so
  training starts after one shard;
* each file is released when tf.data has read its last record (a marker after its records) and deleted when its
  place is needed, so a share that fits the window is fetched once and a larger one never overflows it.

Copy-first training (every file on disk before) goes through the same feed without fetching (`filesystem` None):
the same graph, the same order.
"""

from __future__ import annotations

import collections
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from dataset.versions import public_url
from training.config import StreamOptions


class FetchFailed(RuntimeError):
    """A shard could not be fetched (its message is the one line to show)."""


@dataclass(frozen=True)
class FeedStats:
    """What a feed did: files and bytes on local disk at most, downloads, failed tries, and how long they took."""

    high_water_files: int
    high_water_bytes: int
    fetched: int
    failed_tries: int
    fetch_seconds: tuple[float, ...]  # each download, in order (the first: what start-up waits for)
    shard_bytes: int  # the largest shard this feed may fetch

    def as_dict(self) -> dict[str, Any]:
        return {
            "high_water_files": self.high_water_files,
            "high_water_bytes": self.high_water_bytes,
            "fetched": self.fetched,
            "failed_tries": self.failed_tries,
            "fetch_seconds": list(self.fetch_seconds),
            "shard_bytes": self.shard_bytes,
        }


class ShardFeed:
    """Shards fetched from the store in reading order into local files, at most `options.window` at once.

    Args:
        urls: local path → the shard's URL, for every file the feed may be asked for.
        sizes: local path → its size in bytes (the manifest's); a download of another size is a failed try.
        options: the window and the retry policy.
        filesystem: makes the fsspec filesystem to download with (called once, in the fetching thread); None: the
            files are on local disk already (copy-first): nothing is fetched or deleted.
    """

    def __init__(
        self,
        urls: Mapping[str, str],
        sizes: Mapping[str, int],
        options: StreamOptions,
        filesystem: Callable[[], Any] | None,
    ) -> None:
        self._urls, self._sizes, self._options, self._filesystem = dict(urls), dict(sizes), options, filesystem
        self._cond = threading.Condition()
        self._held: dict[str, int] = {}  # file on disk (or being fetched) → readers holding it; 0: idle
        self._idle: collections.OrderedDict[str, None] = collections.OrderedDict()  # idle files, oldest first
        self._placed: dict[int, str] = {}  # place in the order → its file, on disk, until tf.data has read it
        self._bytes: dict[str, int] = {}
        self._failure: str | None = None
        self._closed = False
        self._finished = False
        self._thread: threading.Thread | None = None
        self._high_files = self._high_bytes = self._failed_tries = 0
        self._fetch_seconds: list[float] = []

    # ---- what tf.data calls ----------------------------------------------------------------------------------------
    def paths(self, order: Callable[[], Iterator[str]], count: int | None = None) -> Any:
        """Start fetching the files of `order()` now; the dataset of their places in that order (0, 1, ...: `count`
        of them, or endless), each of which `read` turns into the file's records once it is on disk.

        The input never waits: TF 2.15's interleave stopped every element while its input (a `from_generator` of
        paths) waited here. An element waits for its file in its own iterator instead, and the interleave that reads
        them is sequential (training/input.py): waiting elements of a parallel one held all its worker threads.
        """
        import tensorflow as tf

        self.start(order)
        return tf.data.Dataset.counter() if count is None else tf.data.Dataset.range(count)

    def read(self, item: Any, compression: str) -> Any:
        """The records of the `item`-th file of the order once it is on disk, then (read to its end) the file
        released; the release marker itself is dropped."""
        import tensorflow as tf

        def wait(place: Any) -> Any:
            return self.wait(int(place)).encode()

        def release(place: Any) -> Any:
            self.release(int(place))
            return place

        path = tf.data.Dataset.from_tensors(item).map(lambda n: tf.reshape(tf.numpy_function(wait, [n], tf.string), []))
        records = path.flat_map(lambda p: tf.data.TFRecordDataset(p, compression_type=compression))
        marker = tf.data.Dataset.from_tensors(item).map(
            lambda n: tf.reshape(tf.numpy_function(release, [n], tf.int64, stateful=True), [])
        )
        return records.concatenate(marker.filter(lambda _: False).map(lambda n: tf.strings.as_string(n)))

    # ---- the feed ----------------------------------------------------------------------------------------------------
    def start(self, order: Callable[[], Iterator[str]]) -> None:
        """Fetch the files of `order()` in a background thread (once)."""
        if self._thread is not None:
            raise RuntimeError("a ShardFeed is started once")
        self._thread = threading.Thread(target=self._fetch_all, args=(order,), name="shard-feed", daemon=True)
        self._thread.start()

    def wait(self, place: int) -> str:
        """The local path of the `place`-th file of the order, once it is on disk.

        Raises:
            FetchFailed: a file of the order could not be fetched.
        """
        with self._cond:
            while place not in self._placed and not (self._failure or self._closed or self._finished):
                self._cond.wait()
            if place in self._placed:
                return self._placed[place]
            raise FetchFailed(self._failure or "the shard feed was closed")

    def release(self, place: int) -> None:
        """tf.data has read the `place`-th file of the order to its end: it may be deleted when its place on disk is
        needed."""
        with self._cond:
            path = self._placed.pop(place, None)
            if path is not None and self._held.get(path, 0) > 0:
                self._held[path] -= 1
                if self._held[path] == 0:
                    self._idle[path] = None
                self._cond.notify_all()

    @property
    def failure(self) -> str | None:
        """The one line naming the shard that could not be fetched, if one could not."""
        with self._cond:
            return self._failure

    def on_disk(self) -> tuple[str, ...] | None:
        """The files on local disk now (fetched, not yet deleted); None: all of them (copy-first)."""
        if self._filesystem is None:
            return None
        with self._cond:
            return tuple(p for p in self._held if p in self._bytes)

    def stats(self) -> FeedStats:
        with self._cond:
            return FeedStats(
                self._high_files,
                self._high_bytes,
                len(self._fetch_seconds),
                self._failed_tries,
                tuple(self._fetch_seconds),
                max(self._sizes.values(), default=0),
            )

    def close(self, timeout: float = 30.0) -> None:
        """Stop fetching and delete the files on disk."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._cond:
            for path in list(self._held):
                self._remove(path)

    # ---- inside ----------------------------------------------------------------------------------------------------
    def _fetch_all(self, order: Callable[[], Iterator[str]]) -> None:
        try:
            fs = None
            for place, path in enumerate(order()):
                with self._cond:
                    if not self._place_for(path):
                        return
                    if path in self._bytes:  # already on disk: read again
                        self._placed[place] = path
                        self._cond.notify_all()
                        continue
                if self._filesystem is None:
                    size = os.path.getsize(path)
                else:
                    fs = fs or self._filesystem()
                    size = self._fetch(fs, path)
                with self._cond:
                    self._bytes[path] = size
                    self._high_files = max(self._high_files, len(self._held))
                    self._high_bytes = max(self._high_bytes, sum(self._bytes.values()))
                    self._placed[place] = path
                    self._cond.notify_all()
        except FetchFailed as err:
            with self._cond:
                self._failure = str(err)
                self._cond.notify_all()
        except Exception as err:  # noqa: BLE001 - the thread must not die silently: tf.data's next request says it
            with self._cond:
                self._failure = f"fetching shards stopped: {type(err).__name__}: {_first_line(err)}"
                self._cond.notify_all()
        finally:
            with self._cond:
                self._finished = True
                self._cond.notify_all()

    def _place_for(self, path: str) -> bool:
        """(Holding the lock) count one more reader of `path`, waiting for a place in the window when it is not on
        disk (an idle file is deleted to make one); False when the feed was closed meanwhile."""
        while not self._closed:
            if path in self._held:
                self._idle.pop(path, None)
                self._held[path] += 1
                return True
            if len(self._held) < self._options.window or self._idle:
                if len(self._held) >= self._options.window:
                    self._remove(next(iter(self._idle)))
                self._held[path] = 1
                return True
            self._cond.wait()
        return False

    def _remove(self, path: str) -> None:
        """(Holding the lock) delete `path` from disk and forget it."""
        self._held.pop(path, None)
        self._idle.pop(path, None)
        self._bytes.pop(path, None)
        if self._filesystem is None:
            return  # copy-first: the files stay
        for name in (path, f"{path}.part"):
            try:
                os.remove(name)
            except FileNotFoundError:
                pass

    def _fetch(self, fs: Any, path: str) -> int:
        """Download the shard of `path` to `path` (through `.part`); returns its size.

        Raises:
            FetchFailed: every attempt failed, or the feed was closed.
        """
        url, expected = self._urls[path], self._sizes.get(path)
        part = f"{path}.part"
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        attempts = self._options.attempts
        for attempt in range(1, attempts + 1):
            start = time.perf_counter()
            try:
                fs.get_file(url, part)
                size = os.path.getsize(part)
                if expected is not None and size != expected:
                    raise OSError(f"got {size} bytes, the manifest says {expected}")
                os.replace(part, path)
                with self._cond:
                    self._fetch_seconds.append(time.perf_counter() - start)
                return size
            except Exception as err:  # noqa: BLE001 - any failure of one download is tried again, then reported
                reason = f"{type(err).__name__}: {_first_line(err)}"
                try:
                    os.remove(part)
                except FileNotFoundError:
                    pass
            with self._cond:
                self._failed_tries += 1
                if attempt < attempts:
                    self._cond.wait_for(lambda: self._closed, self._options.backoff_seconds * 2 ** (attempt - 1))
                if self._closed:
                    raise FetchFailed(f"fetching {public_url(url)} stopped: the feed was closed")
        raise FetchFailed(
            f"cannot fetch shard {public_url(url)} after {attempts} attempts ({reason}); check that it exists on the "
            "store and the store answers, then train again"
        )


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else "no message"
