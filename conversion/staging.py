"""A dataset folder is complete or absent: everything is written to a hidden sibling
folder, and renamed into place only after `manifest.json` and `_SUCCESS` are in it."""

from __future__ import annotations

import posixpath
import uuid

from conversion.errors import ConversionError
from conversion.listing import filesystem

SUCCESS = "_SUCCESS"
MANIFEST = "manifest.json"


class Staging:
    """The staging folder of one run, next to the output folder."""

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
