"""Committing a version and publishing it at the dataset's root: `manifest.json`, `_SUCCESS`, the rejected report
and the TFDS metadata (`dataset.tfds_metadata`) of the current version. Apart from `dataset.versions` (the log and
its put-if-absent commit), because the TFDS metadata reads versions: this module imports both, neither imports it.
"""

from __future__ import annotations

import posixpath

from dataset.errors import DatasetError
from dataset.fs import replace_whole
from dataset.layout import MANIFEST, REJECTED_DIR, SUCCESS, DatasetFolder, version_file
from dataset.manifest import Manifest
from dataset.tfds_metadata import publish_metadata
from dataset.versions import Version, commit_version, committed_numbers, parse_version, read_version


def commit(
    data_url: str,
    manifest: Manifest,
    operation: str,
    parent: Version | None,
    run: str | None = None,
    rollback_of: int | None = None,
    report_from: str | None = None,
) -> Version:
    """Commit `manifest` as the version after `parent` (None: version 1), then copy it to `manifest.json` and the
    rejected report of run folder `report_from` (default: `run`) to `_rejected/`.

    Raises:
        CommitConflict: another writer committed that number first; nothing of this commit is in the log.
    """
    version = commit_version(data_url, manifest, operation, parent, run, rollback_of)
    publish_current(DatasetFolder(data_url), report_from or run)
    return version


def publish_current(folder: DatasetFolder, report_from: str | None = None) -> None:
    """Copy the current version to `manifest.json` (atomically replaced) and write its TFDS metadata
    (`dataset.tfds_metadata`), write `_SUCCESS` if missing, and copy run folder `report_from`'s rejected report to
    `_rejected/`. A writer that copied an older version meanwhile is corrected by the re-check."""
    fs = folder.fs
    copied = None
    while True:
        numbers = committed_numbers(folder)
        if not numbers or numbers[-1] == copied:
            break
        copied = numbers[-1]
        data = fs.cat_file(folder.path(version_file(copied)))
        replace_whole(fs, folder.path(MANIFEST), data)
        publish_metadata(folder.url, parse_version(folder.url, copied, data))
    _copy_rejected(folder, report_from)
    if not fs.exists(folder.path(SUCCESS)):
        fs.pipe_file(folder.path(SUCCESS), b"")


def rollback(data_url: str, number: int) -> Version:
    """Commit the content of version `number` as a new version (nothing is deleted).

    Raises:
        DatasetError: no such version.
        CommitConflict: another writer committed meanwhile.
    """
    current = read_version(data_url)
    target = read_version(data_url, number)
    if number == current.number:
        raise DatasetError(f"version {number} of {data_url} is already the current one; nothing to roll back")
    return commit(data_url, target.manifest, "rollback", current, None, number, report_from=target.info.run)


def _copy_rejected(folder: DatasetFolder, run: str | None) -> None:
    """The root `_rejected/` holds the current version's report (its run folder keeps its own copy)."""
    if run is None:
        return  # a version from before versions: its report is the root one, as it was
    fs = folder.fs
    source, target = folder.path(f"{run}/{REJECTED_DIR}"), folder.path(REJECTED_DIR)
    fs.invalidate_cache(folder.root)
    if fs.exists(target):
        fs.rm(target, recursive=True)
    for path in fs.find(source):  # file by file: one server-side copy each, no folder markers
        copy = f"{target}/{path[len(source) + 1 :]}"
        fs.makedirs(posixpath.dirname(copy), exist_ok=True)  # local disk; nothing on object stores
        fs.copy(path, copy)
