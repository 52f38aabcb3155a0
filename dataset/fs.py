"""Storage access through fsspec (file, hdfs, s3, gs, abfs, dbfs...): opening and listing."""

from __future__ import annotations

import os
import posixpath
from typing import NamedTuple

import fsspec
from fsspec.implementations.local import LocalFileSystem

from dataset.errors import StorageError
from dataset.object_store import storage_options_for


class ListedFile(NamedTuple):  # a NamedTuple: built and pickled per file, so kept cheap
    """One file under a root: its path relative to the root (posix) and its size in bytes."""

    relpath: str
    size: int


def filesystem(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem that serves `url` and the path on it (fsspec picks it by the URL's scheme; ``s3://`` and
    ``s3a://`` reach the store that the standard AWS variables name, see `dataset.object_store`).

    Raises:
        StorageError: the scheme has no fsspec implementation installed, or the AWS variables are malformed.
    """
    try:
        fs, path = fsspec.core.url_to_fs(url, **storage_options_for(url))
    except (ImportError, ValueError) as err:
        raise StorageError(f"cannot open {url}: {err} (install the fsspec plugin for its scheme)") from err
    return fs, path.rstrip("/") or "/"


def is_local(fs: fsspec.AbstractFileSystem) -> bool:
    return isinstance(fs, LocalFileSystem)


def _walk_local(root: str) -> list[ListedFile]:
    # os.scandir is several times faster than fsspec's generic find on local trees with many files.
    found: list[ListedFile] = []
    cut = len(root.rstrip(os.sep)) + 1
    stack = [root]
    while stack:
        folder = stack.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=True):
                    stack.append(entry.path)
                    continue
                try:
                    size = entry.stat(follow_symlinks=True).st_size
                except OSError:
                    size = -1  # a dangling link or a file that vanished: the read will reject it
                found.append(ListedFile(entry.path[cut:].replace(os.sep, "/"), size))
    return found


def list_files(url: str) -> list[ListedFile]:
    """All files under `url`, recursively, sorted by relative path.

    Raises:
        StorageError: the root does not exist or is not a folder.
    """
    fs, root = filesystem(url)
    if not fs.isdir(root):
        raise StorageError(f"input {url} does not exist or is not a folder; pass the root of the label folders")
    if is_local(fs):
        files = _walk_local(root)
    else:
        files = [
            ListedFile(posixpath.relpath(path, root), int(info.get("size") or 0))
            for path, info in fs.find(root, detail=True, withdirs=False).items()
        ]
    return sorted(files, key=lambda f: f.relpath)
