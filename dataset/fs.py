"""Storage access through fsspec (file, hdfs, s3, gs, abfs, dbfs...): opening and listing."""

from __future__ import annotations

import contextlib
import os
import posixpath
import stat
import uuid
from concurrent.futures import ThreadPoolExecutor

import fsspec
import numpy as np
import pyarrow.compute as pc
from fsspec.implementations.local import LocalFileSystem

from dataset import obstore_io
from dataset.errors import StorageError
from dataset.listing import ListedFile as ListedFile  # re-exported: callers import it from here
from dataset.listing import Listing, ListingBuilder
from dataset.object_store import storage_options_for


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


def replace_whole(fs: fsspec.AbstractFileSystem, path: str, data: bytes) -> None:
    """Write `path` so that a reader sees the old or the new bytes, never a part: locally a temporary file, synced,
    renamed over it (removed if the write fails); on object stores one PUT."""
    if not is_local(fs):
        fs.pipe_file(path, data)
        return
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:12]}"
    try:
        with open(tmp, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.remove(tmp)  # no stray temporary file when the disk is full or the folder read-only
        raise


def _kind(mode: int) -> str:
    return "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device or other special file"


def _walk_local(root: str, found: ListingBuilder) -> None:
    # os.scandir is several times faster than fsspec's generic find on local trees with many files.
    cut = len(root.rstrip(os.sep)) + 1

    def relpath(path: str) -> str:
        return path[cut:].replace(os.sep, "/")

    top = os.stat(root)
    # (folder, the (device, inode) of it and its ancestors): a link back to an ancestor is a loop
    stack: list[tuple[str, frozenset]] = [(root, frozenset({(top.st_dev, top.st_ino)}))]
    while stack:
        folder, ancestors = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as err:
            found.add(relpath(folder), -1, "unreadable_folder", f"cannot list it: {err.strerror or err}")
            continue
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=True)
            except OSError:
                found.add(relpath(entry.path), -1)  # a dangling link or a file that vanished: the read rejects it
                continue
            if stat.S_ISDIR(info.st_mode):
                node = (info.st_dev, info.st_ino)
                if node in ancestors:
                    detail = f"a link to {os.path.realpath(entry.path)}, a folder that contains it: not followed"
                    found.add(relpath(entry.path), -1, "symlink_loop", detail)
                else:
                    stack.append((entry.path, ancestors | {node}))
            elif stat.S_ISREG(info.st_mode):
                found.add(relpath(entry.path), info.st_size, stamp=str(info.st_mtime_ns))
            else:
                detail = f"{_kind(info.st_mode)}, not a regular file: not read"
                found.add(relpath(entry.path), -1, "not_a_regular_file", detail)


def list_files(url: str) -> Listing:
    """All files under `url`, recursively, sorted by relative path, as columns (iterating yields `ListedFile`s), with
    each file's stamp (`Listing.stamps`: mtime in ns locally, ETag on object stores; from the listing itself).
    S3 listings go through obstore where it lists exactly what s3fs would (`dataset.obstore_io`), else s3fs.

    Raises:
        StorageError: the root does not exist or is not a folder.
    """
    fs, root = filesystem(url)
    if not is_local(fs):
        listed = _find_with_obstore(fs, root)
        if listed is not None:
            return listed
    fs.invalidate_cache(root)  # a fresh listing; on an object store isdir lists the root and caches it for below
    if not fs.isdir(root):
        raise StorageError(f"input {url} does not exist or is not a folder; pass the root of the label folders")
    found = ListingBuilder()
    if is_local(fs):
        _walk_local(root, found)
    else:
        _find_remote(fs, root, found)
    return found.build()


LISTING_THREADS = 16  # top-level folders (labels, or splits) listed at once on a remote store


def _find_remote(fs: fsspec.AbstractFileSystem, root: str, found: ListingBuilder) -> None:
    """Every file under `root` on an object store: one recursive listing per top-level folder, up to
    `LISTING_THREADS` at once (a serial listing waits a round trip per 1,000 keys), plus the files directly
    under `root`. Each folder's listing becomes columns as soon as it is in."""
    top = fs.ls(root, detail=True)  # from the listing `list_files`' isdir just made
    folders = [entry["name"].rstrip("/") for entry in top if entry["type"] == "directory"]
    _add_found(found, root, {entry["name"]: entry for entry in top if entry["type"] != "directory"})
    if folders:
        with ThreadPoolExecutor(min(LISTING_THREADS, len(folders))) as pool:
            for listed in pool.map(lambda folder: _find_folder(fs, folder), folders):
                _add_found(found, root, listed)


def _find_folder(fs: fsspec.AbstractFileSystem, folder: str) -> dict:
    """s3fs's recursive listing of `folder` (path -> info), left out of its listing cache."""
    listed = fs.find(folder, detail=True, withdirs=False)
    _forget(fs, folder)
    return listed


def _add_found(found: ListingBuilder, root: str, listed: dict) -> None:
    prefix = root.rstrip("/") + "/"
    for path, info in listed.items():
        if not path.endswith("/"):  # a folder marker object
            # cutting the prefix costs 0.08 us a key, posixpath.relpath 4.6 (it calls getcwd twice)
            relpath = path[len(prefix) :] if path.startswith(prefix) else posixpath.relpath(path, root)
            found.add(relpath, int(info.get("size") or 0), stamp=_stamp(info))


def _find_with_obstore(fs: fsspec.AbstractFileSystem, root: str) -> Listing | None:
    """What `_find_remote` lists, through obstore (`dataset.obstore_io`): the root's first level, then each top-level
    folder recursively, `LISTING_THREADS` at once, its pages as Arrow columns (no Python object per key); a folder
    obstore declines (one with a zero-byte object, say) is listed by s3fs. None when obstore declines the root's
    first level, or finds nothing there (s3fs then lists it all, with its own errors for a missing root)."""
    top = obstore_io.list_top(fs, root)
    if top is None or not (top.folders or top.objects):
        return None
    bucket = root.split("/", 1)[0]
    prefix = root[len(bucket) + 1 :] + "/" if "/" in root else ""  # of every key under the root ("" for a bucket)
    found = ListingBuilder()
    for key, size, etag in top.objects:
        found.add(key[len(prefix) :], size, stamp=etag.strip('"') if etag is not None else None)

    def listed(folder: str) -> list | dict:
        batches = obstore_io.list_folder(fs, f"{bucket}/{folder}")
        return _find_folder(fs, f"{bucket}/{folder}") if batches is None else batches

    with ThreadPoolExecutor(max(1, min(LISTING_THREADS, len(top.folders)))) as pool:
        for batches in pool.map(listed, top.folders):
            if isinstance(batches, dict):  # s3fs's
                _add_found(found, root, batches)
                continue
            for batch in batches:
                found.add_columns(
                    pc.utf8_slice_codeunits(batch.column("path"), len(prefix)),  # code points, as `len` counts
                    batch.column("size").to_numpy(zero_copy_only=False).astype(np.int64),
                    pc.utf8_trim(batch.column("e_tag"), '"'),
                )
    return found.build()


def _stamp(info: dict) -> str | None:
    """What an object store's listing says of an object's content besides its size: the ETag (S3, GCS, Azure...),
    else the modification time it gives; None when it gives neither."""
    for key in ("ETag", "etag", "md5Hash", "generation", "LastModified", "last_modified", "mtime"):
        value = info.get(key)
        if value is not None and value != "":
            return str(value).strip('"')
    return None


def _forget(fs: fsspec.AbstractFileSystem, folder: str) -> None:
    """Drop what a recursive listing of `folder` left in `fs`'s listing cache (s3fs keeps an entry of a few hundred
    bytes per object there, for as long as the filesystem object lives: gigabytes for millions of files)."""
    cache = getattr(fs, "dircache", None)
    if cache is not None:
        for key in [key for key in list(cache) if key == folder or key.startswith(f"{folder}/")]:
            cache.pop(key, None)
