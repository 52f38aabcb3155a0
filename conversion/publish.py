"""One commit path for every writer and every store: a run writes its files in place under names never
used before, and one version file is the only atomic step (see `dataset.versions`).

Each run writes its shards and its rejected report into its own folder in the dataset, `run-<time>-<random>/`
(`dataset.layout.run_folder_name`); no file is renamed into place and none is ever rewritten. `publish` checks
the reject limit, then commits the run's manifest as the next version with a put-if-absent: of two runs
committing at once exactly one wins, the other stops with one line and removes its folder. A run that fails
removes its folder; a run killed before its commit leaves a folder no version lists, which
`jobs/versions.py --vacuum` removes once it is old enough.

    with staged_output(input_url, options.output, options.mode) as run:
        ... write shards and the rejected report into run.path ...
        publish(run, manifest, bad=..., total=..., limit=options.max_reject_fraction, unit="images")
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import posixpath
import re
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone

from dataset.errors import ConversionError, RejectLimitExceeded, StorageError
from dataset.fs import filesystem, is_local
from dataset.layout import MANIFEST, REJECTED_DIR, RUN_PREFIX, SUCCESS, VERSIONS_DIR, DatasetFolder, run_folder_name
from dataset.manifest import Manifest
from dataset.publishing import publish_current
from dataset.tfds_metadata import is_tfds_file
from dataset.versions import Version, commit_version, current_number, read_version

OURS = (VERSIONS_DIR, MANIFEST, SUCCESS, REJECTED_DIR)  # besides run folders and TFDS metadata: what a dataset holds


class RunFolder:
    """The folder of one run's files inside the dataset folder, and the commit of what it wrote."""

    final_names = True  # a folder no other run writes: shards go under their final names (no rename)

    def __init__(self, output_url: str) -> None:
        self.fs, self.output = filesystem(output_url)
        self.output_url = output_url
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        self.run = run_folder_name(stamp, uuid.uuid4().hex[:8])
        self.path = f"{self.output}/{self.run}"
        self.parent: Version | None = None
        self.committed = False
        self.created_output = False

    def url(self, path: str | None = None) -> str:
        """A URL (with scheme) that executors can open, for the run folder or a path in it."""
        return self.fs.unstrip_protocol(path or self.path)

    def begin(self, mode: str) -> None:
        """Check the output against `mode` and note the version this run builds on.

        Raises:
            ConversionError: `mode` is "error" and the output holds a dataset or files no conversion wrote.
            StorageError: the folder that would hold the output does not exist (local paths) or
                cannot be written.
        """
        parent = posixpath.dirname(self.output)
        if is_local(self.fs) and not self.fs.isdir(parent):
            raise StorageError(
                f"the folder that would hold --output {self.output}, {parent}, does not exist; "
                "create it first (or check that its disk is mounted)"
            )
        exists = self.fs.isdir(self.output)
        self.created_output = not exists
        number = current_number(DatasetFolder(self.output_url)) if exists else 0
        if mode == "error" and (number or (exists and self._foreign_files())):
            raise ConversionError(
                f"output {self.url(self.output)} already exists; pass --mode overwrite to replace it "
                "or choose another --output"
            )
        if mode == "append" and not number and exists and self._foreign_files():
            raise ConversionError(
                f"output {self.url(self.output)} holds files but no dataset to append to; choose another --output"
            )
        self.parent = read_version(self.output_url) if number else None
        try:
            self.fs.makedirs(self.path, exist_ok=True)
        except OSError as err:
            raise storage_error(err, self.path) from None

    def _foreign_files(self) -> bool:
        """Whether the output holds files that are neither a dataset's nor a run folder."""
        self.fs.invalidate_cache(self.output)
        names = [posixpath.basename(p.rstrip("/")) for p in self.fs.ls(self.output, detail=False)]
        return any(not n.startswith(RUN_PREFIX) and n not in OURS and not is_tfds_file(n) for n in names)

    def keep_attempts(self, winners: dict[str, str]) -> None:
        """Rename the attempt files Spark reported (temporary path → shard name) and drop the ones that lost
        (failed or speculative task attempts); shards written under their final names stay as they are."""
        moved = [(tmp, f"{self.path}/{name}") for tmp, name in winners.items() if tmp != f"{self.path}/{name}"]
        if not moved:  # every shard under its final name: no attempt file exists, no listing needed
            return
        for tmp_path, final in moved:
            self.fs.mv(tmp_path, final)
        self.fs.invalidate_cache(self.path)
        losers = [p for p in self.fs.ls(self.path, detail=False) if ".tmp-" in posixpath.basename(p)]
        if losers:
            self.fs.rm(losers)

    def write_text(self, name: str, text: str) -> None:
        path = f"{self.path}/{name}"
        self.fs.makedirs(posixpath.dirname(path), exist_ok=True)
        with self.fs.open(path, "w", encoding="utf-8") as out:
            out.write(text)

    def drop_all_but_rejected(self) -> None:
        """Remove everything but the rejected report (what a refused run leaves for the user; vacuum removes it)."""
        self.fs.invalidate_cache(self.path)
        stale = [p for p in self.fs.ls(self.path, detail=False) if posixpath.basename(p.rstrip("/")) != REJECTED_DIR]
        if stale:
            self.fs.rm(stale, recursive=True)

    @property
    def token(self) -> str:
        """The random part of the run folder's name (appends put it in their shard names)."""
        return self.run.rsplit("-", 1)[-1]

    def relpath(self, name: str) -> str:
        """The dataset-relative path of file `name` of this run folder (what a manifest lists)."""
        return f"{self.run}/{name}"

    def commit(self, manifest: Manifest, operation: str | None = None, in_run: bool = True) -> Version:
        """Commit `manifest` as the next version after `parent` (the version `begin` found).

        With `in_run`, the manifest's shard paths are relative to this run folder (a full conversion); without, they
        are dataset-relative already: an append lists the parent's shards as they are plus this run's
        (`relpath`), a compaction this run's and the parent's it keeps. `operation` defaults to "convert" (no
        parent) or "overwrite".

        Raises:
            CommitConflict: another run committed first.
        """
        located = in_folder(manifest, self.run) if in_run else manifest
        operation = operation or ("overwrite" if self.parent is not None else "convert")
        version = commit_version(self.output_url, located, operation, self.parent, self.run)
        self.committed = True  # from here the run folder belongs to a version: never removed by `abort`
        publish_current(DatasetFolder(self.output_url), self.run)
        return version

    def abort(self) -> None:
        """Remove this run's folder (a failed run keeps nothing half-written), unless a version lists it."""
        if self.committed:
            return
        self.fs.invalidate_cache(self.path)
        if self.fs.exists(self.path):
            self.fs.rm(self.path, recursive=True)
        if self.created_output and is_local(self.fs) and not os.listdir(self.output):
            os.rmdir(self.output)  # the folder this run made for itself


Staging = RunFolder  # the name the writers know it by


def in_folder(manifest: Manifest, run: str) -> Manifest:
    """`manifest` with each shard path prefixed by the run folder that holds it."""
    splits = {
        name: dataclasses.replace(split, files=tuple(f.under(run) for f in split.files))
        for name, split in manifest.splits.items()
    }
    return dataclasses.replace(manifest, splits=splits)


def speculative(spark: object) -> bool:
    """Whether Spark may run two attempts of a task at once (then attempt files are kept, and moved at commit)."""
    return str(spark.conf.get("spark.speculation", "false")).lower() == "true"  # type: ignore[attr-defined]


_STORAGE_ERRNOS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EFBIG: "the file is larger than allowed",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
}
# How an executor's OSError (Python) or IOException (JVM) reads in the text of a failed Spark job.
_PYTHON_OSERROR = re.compile(r"(?:OSError|PermissionError|IOError): \[Errno (\d+)\] [^\n']*(?:: '([^'\n]+)')?")
_JVM_NO_SPACE = re.compile(r"java\.io\.IOException: No space left on device")


def storage_error(err: BaseException, where: str) -> StorageError:
    """One line for a write that the storage refused (full, read-only, no permission)."""
    number = getattr(err, "errno", None)
    path = getattr(err, "filename", None) or where
    reason = _STORAGE_ERRNOS.get(number, getattr(err, "strerror", None) or str(err).splitlines()[0])
    return StorageError(f"cannot write {path}: {reason}; free space or choose another --output, nothing was published")


def storage_error_in(err: BaseException, where: str) -> StorageError | None:
    """The storage error inside a failed Spark job's text (an executor's write), if there is one."""
    text = str(err)
    for match in _PYTHON_OSERROR.finditer(text):
        if int(match.group(1)) in _STORAGE_ERRNOS:
            number = int(match.group(1))
            return storage_error(OSError(number, os.strerror(number), match.group(2) or where), where)
    if _JVM_NO_SPACE.search(text):
        return storage_error(OSError(errno.ENOSPC, "No space left on device", where), where)
    return None


def check_paths(input_url: str, output_url: str) -> None:
    """Refuse an output inside the input, and an input inside the output (overwrite would delete it).

    Raises:
        ConversionError: the two overlap.
    """
    in_fs, in_path = filesystem(input_url)
    out_fs, out_path = filesystem(output_url)
    if type(in_fs) is type(out_fs):
        real = os.path.realpath if is_local(in_fs) else posixpath.normpath
        output, source = real(out_path), real(in_path)
        if output == source or output.startswith(source.rstrip("/") + "/"):
            raise ConversionError(f"output {output_url} lies inside input {input_url}; choose an --output outside it")
        if source.startswith(output.rstrip("/") + "/"):
            raise ConversionError(f"input {input_url} lies inside output {output_url}; choose an --output elsewhere")


@contextlib.contextmanager
def staged_output(input_url: str | None, output_url: str, mode: str) -> Iterator[RunFolder]:
    """The run folder of one run of `output_url`; removed if the body fails before its commit, kept with its
    rejected report if the reject limit stopped the run."""
    if input_url is not None:
        check_paths(input_url, output_url)
    staging = RunFolder(output_url)
    staging.begin(mode)
    try:
        yield staging
        if not staging.committed:  # a run with nothing new to commit leaves nothing behind
            staging.abort()
    except RejectLimitExceeded:
        raise  # the run folder keeps the rejected report (and nothing else) for the user to read
    except OSError as err:
        _abort_quietly(staging)
        if err.errno in _STORAGE_ERRNOS:
            raise storage_error(err, staging.path) from None
        raise
    except BaseException as err:
        _abort_quietly(staging)
        found = storage_error_in(err, staging.path)
        if found is not None:
            raise found from None
        raise


def _abort_quietly(staging: RunFolder) -> None:
    """Remove the run folder; a storage that refuses even that must not hide the first error."""
    try:
        staging.abort()
    except OSError:
        pass


def refuse_over_limit(staging: RunFolder, bad: int, total: int, limit: float, unit: str) -> None:
    """Stop the run if `bad` of `total` inputs exceed `limit` (writers may call it before writing shards).

    Raises:
        RejectLimitExceeded: too many rejects; only the rejected report stays, in the run folder.
    """
    if bad > limit * total:
        staging.drop_all_but_rejected()
        raise RejectLimitExceeded(
            f"{bad} of {total} {unit} rejected ({bad / total:.1%}) > --max-reject-fraction "
            f"{limit}; nothing was committed; see {staging.url()}/{REJECTED_DIR}"
        )


def publish(
    staging: RunFolder,
    manifest: Manifest,
    bad: int,
    total: int,
    limit: float,
    unit: str,
    operation: str | None = None,
    in_run: bool = True,
) -> Version:
    """Refuse the run if `bad` of `total` inputs exceed `limit`; else commit the run's manifest as the next
    version (`manifest.json` and `_SUCCESS` follow it); `operation` and `in_run` as `RunFolder.commit` takes them.

    Raises:
        RejectLimitExceeded: too many rejects; only the rejected report stays, in the run folder.
        ConversionError: nothing could be converted.
        DatasetError: the manifest's counts do not reconcile.
        CommitConflict: another run committed first.
    """
    refuse_over_limit(staging, bad, total, limit, unit)
    manifest.check()
    if manifest.num_records == 0:
        raise ConversionError(f"no record could be converted from {manifest.source_root}; see the rejected reasons")
    return staging.commit(manifest, operation, in_run)
