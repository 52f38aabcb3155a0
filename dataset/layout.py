"""The file layout of a dataset folder: the one owner of its names and URLs.

    <split>-00003-of-00016.tfrecord[.gz]   shards
    <split>-00003-of-00016.tfrecord.idx    a shard's record index (uncompressed shards)
    manifest.json                          the contract (see `dataset.manifest`)
    _rejected/                             what was not converted, and why
    _SUCCESS                               written last: the folder is complete

Versioned (see `dataset.versions`): each run writes its shards and rejected report into a folder of its own,
`run-<UTC time>-<random>/`, named once; `_versions/NNNNNNNN.json` are the version manifests; `manifest.json`,
`_rejected/` and `_SUCCESS` at the root are copies for the current version.
"""

from __future__ import annotations

from dataclasses import dataclass

import fsspec

from dataset.fs import filesystem

MANIFEST = "manifest.json"
SUCCESS = "_SUCCESS"
REJECTED_DIR = "_rejected"
REJECTED_REPORT = f"{REJECTED_DIR}/rejected.jsonl"
VERSIONS_DIR = "_versions"
RUN_PREFIX = "run-"
INDEX_SUFFIX = ".idx"

COMPRESSIONS = ("none", "gzip")  # only codecs tf.data reads
_SUFFIX = {"none": "", "gzip": ".gz"}
_TF_NAME = {"none": "", "gzip": "GZIP"}


def shard_file_name(split: str, index: int, count: int, compression: str, tag: str = "") -> str:
    """`<split>-00003-of-00016.tfrecord` (`.gz` appended for gzip): the one naming of shards. With `tag` (an append's
    run token), `<split>-00003-of-00016-<tag>.tfrecord`: a version made of several runs' shards never lists two
    shards of one file name (readers that copy shards side by side name the copies by it)."""
    tagged = f"-{tag}" if tag else ""
    return f"{split}-{index:05d}-of-{count:05d}{tagged}.tfrecord{_SUFFIX[compression]}"


def index_file_name(shard: str) -> str:
    """`<shard>.idx`: a shard's record index (`dataset.record_index`), next to it (the name `tfrecord` and DALI
    readers are given)."""
    return f"{shard}{INDEX_SUFFIX}"


def version_file(number: int) -> str:
    """`_versions/00000002.json`: the manifest of version `number`, relative to the dataset folder."""
    return f"{VERSIONS_DIR}/{number:08d}.json"


def run_folder_name(stamp: str, token: str) -> str:
    """`run-20261206T103720Z-1f2e3d4c`: the folder of one run's files, a name never used twice."""
    return f"{RUN_PREFIX}{stamp}-{token}"


def tf_compression(compression: str) -> str:
    """The `compression_type` tf.data takes for a manifest's compression ("" or "GZIP")."""
    return _TF_NAME[compression]


@dataclass(frozen=True)
class DatasetFolder:
    """A dataset folder at a URL: every path in it is built here."""

    url: str

    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        return filesystem(self.url)[0]

    @property
    def root(self) -> str:
        """The folder's path on its filesystem (no scheme)."""
        return filesystem(self.url)[1]

    def path(self, relpath: str) -> str:
        """A file's path on the filesystem (no scheme), for fsspec calls on `fs`."""
        return f"{self.root}/{relpath}"

    def file_url(self, relpath: str) -> str:
        """A file's URL with scheme, for readers in other processes (tf.data, executors)."""
        fs, root = filesystem(self.url)
        return fs.unstrip_protocol(f"{root}/{relpath}")
