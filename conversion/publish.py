"""One publish path for every writer: a dataset folder is complete or absent.

Everything is written to a hidden sibling staging folder; `publish` checks the reject limit,
writes `manifest.json` and `_SUCCESS`, and renames the staging folder into place.

    with staged_output(input_url, options.output, options.mode) as staging:
        ... write shards and the rejected report into staging ...
        publish(staging, manifest, bad=..., total=..., limit=options.max_reject_fraction, unit="images")
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import posixpath
import re
import socket
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone

from conversion.in_place import InPlaceOutput, is_object_store
from dataset.errors import ConversionError, RejectLimitExceeded, StorageError
from dataset.fs import filesystem, is_local
from dataset.layout import MANIFEST, REJECTED_DIR, SUCCESS
from dataset.manifest import Manifest

OWNER = "_OWNER"  # in a staging folder: {"pid", "host", "started"} of the run writing it
ORPHAN_AGE_S = 600  # a staging folder without an owner file and untouched this long is a killed run's


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


class Staging:
    """The staging folder of one run, next to the output folder.

    It holds an owner file (pid, host, start time), so that a second run of the same output
    refuses to start while the first is alive instead of deleting its staging folder, and
    removes the staging folders of runs that are gone.
    """

    final_names = False  # writers use attempt names (`<name>.tmp-<attempt>`), renamed by `keep_attempts`

    def __init__(self, output_url: str) -> None:
        self.fs, self.output = filesystem(output_url)
        parent, name = posixpath.split(self.output)
        self._prefix = f"{parent}/.{name}.staging-"
        self.path = f"{self._prefix}{uuid.uuid4().hex[:12]}"

    def url(self, path: str | None = None) -> str:
        """A URL (with scheme) that executors can open, for the staging folder or a path in it."""
        return self.fs.unstrip_protocol(path or self.path)

    def output_exists(self) -> bool:
        return self.fs.exists(self.output) and bool(self.fs.ls(self.output))

    def begin(self, mode: str) -> None:
        """Check the output against `mode`, drop staging folders of runs that are gone, start ours.

        Raises:
            ConversionError: the output exists and `mode` is "error", or another live run is
                writing the same output.
            StorageError: the folder that would hold the output does not exist (local paths) or
                cannot be written.
        """
        if mode == "error" and self.output_exists():
            raise ConversionError(
                f"output {self.output} already exists; pass --mode overwrite to replace it or choose another --output"
            )
        parent = posixpath.dirname(self.output)
        if is_local(self.fs) and not self.fs.isdir(parent):
            raise StorageError(
                f"the folder that would hold --output {self.output}, {parent}, does not exist; "
                "create it first (or check that its disk is mounted)"
            )
        if self.fs.exists(parent):
            for other in self._siblings():
                if self._is_live(other):
                    raise ConversionError(self._live_message(other))
                self.fs.rm(other, recursive=True)
        try:
            self.fs.makedirs(self.path, exist_ok=True)
            owner = {"pid": os.getpid(), "host": socket.gethostname(), "started": _now()}
            self.write_text(OWNER, json.dumps(owner) + "\n")
        except OSError as err:
            raise storage_error(err, self.path) from None

    def _owner(self, folder: str) -> dict | None:
        try:
            return json.loads(self.fs.cat_file(f"{folder}/{OWNER}"))
        except (OSError, ValueError):
            return None

    def _is_live(self, folder: str) -> bool:
        """Whether another run may still be writing `folder` (kept unless it is known to be gone)."""
        if "staging-old-" in posixpath.basename(folder):
            return False  # a replaced output left by a killed commit
        owner = self._owner(folder)
        if owner is None and self._only_rejected(folder):
            return False  # what a run refused by the reject limit leaves for the user
        if owner is None:  # no owner file yet (being created) or an older version's folder
            modified = self.fs.modified(folder) if is_local(self.fs) else None
            return modified is not None and time.time() - modified.timestamp() < ORPHAN_AGE_S
        if owner.get("host") == socket.gethostname():
            return _process_alive(int(owner.get("pid", 0)))
        return True  # another machine's run: whether it is alive cannot be told from here

    def _only_rejected(self, folder: str) -> bool:
        names = {posixpath.basename(p.rstrip("/")) for p in self.fs.ls(folder, detail=False)}
        return names == {REJECTED_DIR}

    def _live_message(self, folder: str) -> str:
        owner = self._owner(folder) or {}
        who = (
            f"process {owner['pid']} on {owner['host']}, started {owner.get('started', '?')}"
            if owner
            else "a run that started moments ago"
        )
        return (
            f"another conversion ({who}) is writing {self.output} in {self.fs.unstrip_protocol(folder)}; "
            "wait for it to finish, or remove that folder if that run is dead"
        )

    def _siblings(self) -> list[str]:
        """Staging folders of earlier runs of this output (listed, not globbed: names may hold [ or *)."""
        parent = posixpath.dirname(self.output)
        return [
            p
            for p in self.fs.ls(parent, detail=False)
            if posixpath.basename(p.rstrip("/")).startswith(posixpath.basename(self._prefix))
        ]

    def keep_attempts(self, winners: dict[str, str]) -> None:
        """Rename the attempt files Spark reported (temporary path → shard name) and drop the
        ones that lost (failed or speculative task attempts)."""
        for tmp_path, name in winners.items():
            self.fs.mv(tmp_path, f"{self.path}/{name}")
        for path in self.fs.ls(self.path, detail=False):
            if ".tmp-" in posixpath.basename(path):
                self.fs.rm(path)

    def write_text(self, name: str, text: str) -> None:
        path = f"{self.path}/{name}"
        self.fs.makedirs(posixpath.dirname(path), exist_ok=True)
        with self.fs.open(path, "w", encoding="utf-8") as out:
            out.write(text)

    def drop_all_but_rejected(self) -> None:
        """Remove everything but the rejected report (what a refused run leaves for the user; the
        next run removes it)."""
        for path in self.fs.ls(self.path, detail=False):
            if posixpath.basename(path.rstrip("/")) != REJECTED_DIR:
                self.fs.rm(path, recursive=True)

    def commit(self) -> None:
        """Rename staging into place (replacing an existing output, which `begin` allowed)."""
        self.fs.rm(f"{self.path}/{OWNER}")
        old = None
        if self.fs.exists(self.output):
            old = f"{self._prefix}old-{uuid.uuid4().hex[:12]}"
            self.fs.mv(self.output, old, recursive=True)
        self.fs.mv(self.path, self.output, recursive=True)
        if old is not None:
            self.fs.rm(old, recursive=True)

    def abort(self) -> None:
        """Remove the staging folder (a failed run keeps nothing half-written)."""
        if self.fs.exists(self.path):
            self.fs.rm(self.path, recursive=True)


def _output_for(output_url: str) -> Staging:
    """`InPlaceOutput` on object stores (written in place, without renames), a `Staging` folder elsewhere."""
    fs, _ = filesystem(output_url)
    return InPlaceOutput(output_url) if is_object_store(fs) else Staging(output_url)  # type: ignore[return-value]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


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
def staged_output(input_url: str | None, output_url: str, mode: str) -> Iterator[Staging]:
    """A staging folder for one run of `output_url`; removed if the body fails, kept with its
    rejected report if the reject limit stopped the run."""
    if input_url is not None:
        check_paths(input_url, output_url)
    staging = _output_for(output_url)
    staging.begin(mode)
    try:
        yield staging
    except RejectLimitExceeded:
        raise  # the staging folder keeps the rejected report (and nothing else) for the user to read
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


def _abort_quietly(staging: Staging) -> None:
    """Remove the staging folder; a storage that refuses even that must not hide the first error."""
    try:
        staging.abort()
    except OSError:
        pass


def refuse_over_limit(staging: Staging, bad: int, total: int, limit: float, unit: str) -> None:
    """Stop the run if `bad` of `total` inputs exceed `limit` (writers may call it before writing shards).

    Raises:
        RejectLimitExceeded: too many rejects; only the rejected report stays, in staging.
    """
    if bad > limit * total:
        staging.drop_all_but_rejected()
        raise RejectLimitExceeded(
            f"{bad} of {total} {unit} rejected ({bad / total:.1%}) > --max-reject-fraction "
            f"{limit}; nothing was written; see {staging.url()}/{REJECTED_DIR}"
        )


def publish(staging: Staging, manifest: Manifest, bad: int, total: int, limit: float, unit: str) -> None:
    """Refuse the run if `bad` of `total` inputs exceed `limit`; else write the manifest and
    `_SUCCESS` and commit the staging folder.

    Raises:
        RejectLimitExceeded: too many rejects; only the rejected report stays, in staging.
        ConversionError: nothing could be converted.
        DatasetError: the manifest's counts do not reconcile.
    """
    refuse_over_limit(staging, bad, total, limit, unit)
    manifest.check()
    if manifest.num_records == 0:
        raise ConversionError(f"no record could be converted from {manifest.source_root}; see the rejected reasons")
    staging.write_text(MANIFEST, manifest.to_json())
    staging.write_text(SUCCESS, "")
    staging.commit()
