"""One publish path for every writer: a dataset folder is complete or absent.

Everything is written to a hidden sibling staging folder; `publish` checks the reject limit,
writes `manifest.json` and `_SUCCESS`, and renames the staging folder into place.

    with staged_output(input_url, options.output, options.mode) as staging:
        ... write shards and the rejected report into staging ...
        publish(staging, manifest, bad=..., total=..., limit=options.max_reject_fraction, unit="images")
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import uuid
from collections.abc import Iterator

from conversion.in_place import InPlaceOutput, is_object_store
from dataset.errors import ConversionError, RejectLimitExceeded
from dataset.fs import filesystem, is_local
from dataset.layout import MANIFEST, REJECTED_DIR, SUCCESS
from dataset.manifest import Manifest


class Staging:
    """The staging folder of one run, next to the output folder."""

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
        """Check the output against `mode`, drop stale staging folders of killed runs, start ours.

        Raises:
            ConversionError: the output exists and `mode` is "error".
        """
        if mode == "error" and self.output_exists():
            raise ConversionError(
                f"output {self.output} already exists; pass --mode overwrite to replace it or choose another --output"
            )
        parent = posixpath.dirname(self.output)
        if self.fs.exists(parent):
            for stale in self._siblings():
                self.fs.rm(stale, recursive=True)
        self.fs.makedirs(self.path, exist_ok=True)

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
        """Remove everything but the rejected report (what a refused run leaves for the user)."""
        for path in self.fs.ls(self.path, detail=False):
            if posixpath.basename(path.rstrip("/")) != REJECTED_DIR:
                self.fs.rm(path, recursive=True)

    def commit(self) -> None:
        """Rename staging into place (replacing an existing output, which `begin` allowed)."""
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
    except BaseException:
        staging.abort()
        raise


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
