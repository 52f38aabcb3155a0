"""The version log of a dataset folder: numbered, immutable version manifests, committed by one put-if-absent.

    _versions/00000001.json    version 1: a manifest (`dataset.manifest`) plus a "version" section
    _versions/00000002.json    version 2 ...
    manifest.json, _SUCCESS    a copy of the current version, for readers of the folder format before versions

The current version is the highest-numbered file in `_versions/`. A commit writes the next number once:
locally a temporary file hard-linked to the final name (the link fails if the name exists), on S3 a PUT
with `If-None-Match: *` (answered 412 or 409 when the name exists). Of two writers committing the same
number exactly one wins; the other gets `CommitConflict`. A folder written before versions (a
`manifest.json` and `_SUCCESS`, no `_versions/`) reads as version 1; the first commit on it stores that
manifest, byte for byte, as `_versions/00000001.json` first.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from urllib.parse import urlsplit, urlunsplit

import fsspec

from dataset.errors import DatasetError, PipelineError
from dataset.fs import is_local
from dataset.layout import MANIFEST, SUCCESS, VERSIONS_DIR, DatasetFolder, version_file
from dataset.manifest import Manifest

OPERATIONS = ("convert", "overwrite", "rollback", "append", "compact")
_VERSION_NAME = re.compile(r"^(\d{8})\.json$")
_S3_PROTOCOLS = frozenset({"s3", "s3a", "s3n"})
_IF_NONE_MATCH_HANDLER = "tfrecordpipe-version-if-none-match"


class CommitConflict(PipelineError):
    """Another writer committed the version number this commit wanted."""


@dataclass(frozen=True)
class VersionInfo:
    """What a version adds to its manifest: where it sits in the history and what it changed."""

    number: int
    parent: int | None
    operation: str  # one of OPERATIONS
    committed_at: str
    run: str | None = None  # the folder holding the files this commit wrote (None: it wrote no shard)
    added: tuple[str, ...] = ()  # shard paths not in the parent
    removed: tuple[str, ...] = ()  # shard paths of the parent not in this version
    rollback_of: int | None = None  # a rollback: the version whose content this is
    commit_id: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass(frozen=True)
class Version:
    """One committed version: its manifest, history entry and the sha256 of its manifest file (lineage)."""

    manifest: Manifest
    info: VersionInfo
    sha256: str
    data: bytes  # the version file's bytes, as stored

    @property
    def number(self) -> int:
        return self.info.number


def public_url(url: str) -> str:
    """`url` without user info, query or fragment: safe to print and to record (lineage)."""
    parts = urlsplit(url)
    if not parts.scheme or len(parts.scheme) == 1:  # a local path (or a Windows drive letter)
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def lineage(data_url: str, version: Version) -> dict[str, object]:
    """What a model records of the data it saw: the dataset URL, the version and its manifest's sha256."""
    return {"data": public_url(data_url), "version": version.number, "manifest_sha256": version.sha256}


def shard_paths(manifest: Manifest) -> set[str]:
    """Every shard path (relative to the dataset folder) that `manifest` lists."""
    return {f.path for split in manifest.splits.values() for f in split.files}


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def render(manifest: Manifest, info: VersionInfo) -> bytes:
    """The bytes of a version file: the manifest's JSON with a "version" section."""
    data = json.loads(manifest.to_json())
    data["version"] = asdict(info)
    return (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def parse_version(url: str, number: int, data: bytes) -> Version:
    try:
        manifest = Manifest.from_json(data.decode("utf-8"))
        raw = json.loads(data).get("version")
    except (ValueError, KeyError, TypeError) as err:
        raise DatasetError(f"version {number} of {url} is not a valid manifest: {err!r}") from err
    if raw is None:  # a manifest written before versions: version 1 of its folder
        info = VersionInfo(number, None, "convert", manifest.created_at, None, tuple(sorted(shard_paths(manifest))))
    else:
        info = VersionInfo(**{**raw, "number": number, "added": tuple(raw["added"]), "removed": tuple(raw["removed"])})
    manifest.check()
    return Version(manifest, info, hashlib.sha256(data).hexdigest(), data)


def committed_numbers(folder: DatasetFolder) -> list[int]:
    """The numbers of the version files in `_versions/`, ascending (a fresh listing)."""
    fs, path = folder.fs, folder.path(VERSIONS_DIR)
    fs.invalidate_cache(path)
    try:
        names = [posixpath.basename(p.rstrip("/")) for p in fs.ls(path, detail=False)]
    except (FileNotFoundError, NotADirectoryError):  # no folder, or a file where the folder should be
        return []
    return sorted(int(m.group(1)) for m in map(_VERSION_NAME.match, names) if m)


def is_legacy(folder: DatasetFolder) -> bool:
    """A committed folder of the format before versions: `manifest.json` and `_SUCCESS`, no version file."""
    fs = folder.fs
    fs.invalidate_cache(folder.root)
    return fs.exists(folder.path(MANIFEST)) and fs.exists(folder.path(SUCCESS))


def current_number(folder: DatasetFolder) -> int:
    """The current version's number: 0 when nothing is committed, 1 for a folder from before versions."""
    numbers = committed_numbers(folder)
    if numbers:
        return numbers[-1]
    return 1 if is_legacy(folder) else 0


def available(folder: DatasetFolder) -> list[int]:
    """Every version number that can be read."""
    return committed_numbers(folder) or ([1] if is_legacy(folder) else [])


def read_version(data_url: str, number: int | None = None) -> Version:
    """Version `number` of the dataset at `data_url` (default: the current one).

    Raises:
        DatasetError: the folder holds no committed dataset, or no such version.
    """
    folder = DatasetFolder(data_url)
    fs = folder.fs
    committed = committed_numbers(folder)  # one listing of _versions/: on a store, the first of the read's requests
    numbers = committed or ([1] if is_legacy(folder) else [])
    if not numbers:
        if not fs.isdir(folder.root):
            raise DatasetError(f"dataset folder {data_url} does not exist; pass the --output of a conversion")
        raise DatasetError(
            f"{data_url} has no {SUCCESS} or {MANIFEST}: it is not a finished conversion; run the conversion (again)"
        )
    wanted = numbers[-1] if number is None else number
    if wanted not in numbers:
        raise DatasetError(
            f"{data_url} has no version {wanted}; it has versions {_ranges(numbers)} "
            f"(python jobs/versions.py --data {data_url} lists them)"
        )
    legacy = not committed
    path = folder.path(MANIFEST) if legacy else folder.path(version_file(wanted))
    try:
        data = fs.cat_file(path)
    except FileNotFoundError as err:  # vacuumed between the listing and the read
        raise DatasetError(f"version {wanted} of {data_url} is gone (vacuumed?); read another version") from err
    return parse_version(data_url, wanted, data)


def all_versions(data_url: str) -> list[Version]:
    """Every readable version, oldest first."""
    folder = DatasetFolder(data_url)
    return [read_version(data_url, n) for n in available(folder)]


def _ranges(numbers: list[int]) -> str:
    return (
        f"{numbers[0]}-{numbers[-1]}"
        if numbers == list(range(numbers[0], numbers[-1] + 1))
        else ", ".join(map(str, numbers))
    )


def changes(parent: Manifest | None, manifest: Manifest) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The shard paths added and removed going from `parent` to `manifest`."""
    before = shard_paths(parent) if parent is not None else set()
    after = shard_paths(manifest)
    return tuple(sorted(after - before)), tuple(sorted(before - after))


def commit_version(
    data_url: str,
    manifest: Manifest,
    operation: str,
    parent: Version | None,
    run: str | None = None,
    rollback_of: int | None = None,
) -> Version:
    """The commit itself: one put-if-absent of the next version file (see `commit`, which adds the copies).

    Raises:
        CommitConflict: another writer committed that number first.
    """
    folder = DatasetFolder(data_url)
    number = (parent.number if parent else 0) + 1
    if parent is not None and parent.number == 1 and not committed_numbers(folder):
        _put_if_absent(folder, version_file(1), parent.data)  # the folder from before versions enters the log
    added, removed = changes(parent.manifest if parent else None, manifest)
    info = VersionInfo(number, parent.number if parent else None, operation, now(), run, added, removed, rollback_of)
    data = render(manifest, info)
    if not _put_if_absent(folder, version_file(number), data):
        raise CommitConflict(
            f"another run committed version {number} of {data_url} while this one ran; this run committed "
            "nothing: run it again"
        )
    return Version(manifest, info, hashlib.sha256(data).hexdigest(), data)


def _put_if_absent(folder: DatasetFolder, name: str, data: bytes) -> bool:
    """Write `name` only if it does not exist; True if this call wrote it (or an identical write of ours had)."""
    fs, path = folder.fs, folder.path(name)
    fs.makedirs(posixpath.dirname(path), exist_ok=True)
    if is_local(fs):
        return _link_if_absent(path, data)
    if _protocols(fs) & _S3_PROTOCOLS:
        return _s3_put_if_absent(fs, path, data)
    # Other stores (HDFS, GCS, Azure): check, then write. Not safe against a concurrent commit (see docs/versions.md).
    if fs.exists(path):
        return fs.cat_file(path) == data
    fs.pipe_file(path, data)
    return True


def _link_if_absent(path: str, data: bytes) -> bool:
    tmp = f"{posixpath.dirname(path)}/.{posixpath.basename(path)}.tmp-{uuid.uuid4().hex[:12]}"
    with open(tmp, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    try:
        os.link(tmp, path)  # fails if `path` exists, atomically
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)
    return True


def _protocols(fs: fsspec.AbstractFileSystem) -> set[str]:
    protocols = getattr(fs, "protocol", ())
    return {protocols} if isinstance(protocols, str) else set(protocols)


def _add_if_none_match(params: dict, **_: object) -> None:
    """botocore `before-call` handler: every PUT of a version file is a put-if-absent (botocore before 1.35
    has no IfNoneMatch parameter, and s3fs drops parameters its botocore does not know)."""
    if re.search(rf"/{VERSIONS_DIR}/\d{{8}}\.json$", params.get("url_path", "").split("?", 1)[0]):
        params["headers"]["If-None-Match"] = "*"


def _s3_put_if_absent(fs: fsspec.AbstractFileSystem, path: str, data: bytes) -> bool:
    fs.connect()  # the client the PUT below uses (s3fs keeps one per filesystem)
    fs.s3.meta.events.register("before-call.s3.PutObject", _add_if_none_match, unique_id=_IF_NONE_MATCH_HANDLER)
    bucket, key, _ = fs.split_path(path)
    try:
        fs.call_s3("put_object", Bucket=bucket, Key=key, Body=data)
    except OSError as err:
        response = getattr(err.__cause__, "response", None) or {}
        code = response.get("Error", {}).get("Code")
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (409, 412):
            # 412: the name exists. It may hold our own bytes, when a retried PUT follows one that succeeded.
            return _stored(fs, path) == data
        raise
    fs.invalidate_cache(posixpath.dirname(path))
    return True


def _stored(fs: fsspec.AbstractFileSystem, path: str) -> bytes | None:
    fs.invalidate_cache(posixpath.dirname(path))
    try:
        return fs.cat_file(path)
    except FileNotFoundError:
        return None  # 409: a concurrent conditional write that has not landed; it wins, this one lost


def read_manifest(data_url: str, version: int | None = None) -> Manifest:
    """Load the manifest of version `version` (default: the current one) of a committed dataset folder; a folder
    written before versions is version 1.

    Raises:
        DatasetError: the folder is missing, not committed, has no such version, or its manifest is unreadable.
    """
    return read_version(data_url, version).manifest
