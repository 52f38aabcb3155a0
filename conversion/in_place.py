"""The commit protocol for object stores, where a rename is a copy: shards are written once, under their final
names, inside the output folder, and `manifest.json` then `_SUCCESS` are the single commit point.

What a reader may trust: a folder with `_SUCCESS` and `manifest.json` (`dataset.manifest.read_manifest` requires
both); the manifest names every shard with its record count and size. What a crash leaves: the output folder
with `_CONVERTING` (who is writing) and some shards, never `_SUCCESS` or a manifest, so no reader takes it for a
dataset. What a rerun does (any `--mode`, since `_CONVERTING` marks the leftovers as ours): writes `_CONVERTING`,
deletes `_SUCCESS`, then `manifest.json` (the old dataset is now invisible), then every other object, and writes
anew. `--mode error` still refuses a finished dataset and any folder without `_CONVERTING`.

Local disk and HDFS keep `conversion.publish.Staging` (a sibling folder renamed into place: atomic and cheap there).
"""

from __future__ import annotations

import posixpath
import uuid
from datetime import datetime, timezone

from dataset.errors import ConversionError
from dataset.fs import filesystem
from dataset.layout import MANIFEST, REJECTED_DIR, SUCCESS

CONVERTING = "_CONVERTING"
# fsspec protocols of object stores (rename = copy + delete); anything else keeps the staging folder.
OBJECT_STORE_PROTOCOLS = frozenset({"s3", "s3a", "s3n", "gs", "gcs", "abfs", "abfss", "az", "oss", "r2"})


def is_object_store(fs: object) -> bool:
    protocols = getattr(fs, "protocol", ())
    protocols = (protocols,) if isinstance(protocols, str) else protocols
    return any(p in OBJECT_STORE_PROTOCOLS for p in protocols)


class InPlaceOutput:
    """The output folder itself, written in place (the interface of `conversion.publish.Staging`)."""

    final_names = True  # writers put each shard under its final name: no rename at commit

    def __init__(self, output_url: str) -> None:
        self.fs, self.output = filesystem(output_url)
        self.path = self.output
        self.run_id = uuid.uuid4().hex[:12]

    def url(self, path: str | None = None) -> str:
        """A URL (with scheme) that executors can open, for the output or a path in it."""
        return self.fs.unstrip_protocol(path or self.path)

    def write_text(self, name: str, text: str) -> None:
        with self.fs.open(self._at(name), "w", encoding="utf-8") as out:
            out.write(text)

    def _names(self) -> set[str]:
        self.fs.invalidate_cache(self.path)  # executors wrote here: the driver's listing cache is stale
        if not self.fs.exists(self.path):
            return set()
        return {posixpath.basename(p.rstrip("/")) for p in self.fs.ls(self.path, detail=False)}

    def begin(self, mode: str) -> None:
        """Claim the output (`_CONVERTING`), then retract what an earlier run left: `_SUCCESS`, the manifest, the rest.

        Raises:
            ConversionError: `mode` is "error" and the output holds a dataset or files not left by a conversion.
        """
        names = self._names()
        if mode == "error" and names and (SUCCESS in names or CONVERTING not in names):
            raise ConversionError(
                f"output {self.url()} already exists; pass --mode overwrite to replace it or choose another --output"
            )
        self.fs.pipe_file(self._at(CONVERTING), f"{self.run_id} {datetime.now(timezone.utc).isoformat()}\n".encode())
        for name in (SUCCESS, MANIFEST):  # the commit point first: from here no reader takes it for a dataset
            if name in names:
                self.fs.rm_file(self._at(name))
        self._remove_all_but({CONVERTING})

    def _at(self, name: str) -> str:
        return f"{self.path}/{name}"

    def _remove_all_but(self, keep: set[str]) -> None:
        stale = [self._at(n) for n in sorted(self._names() - keep)]
        if stale:
            self.fs.rm(stale, recursive=True)  # batched: one DeleteObjects per 1,000 keys

    def keep_attempts(self, winners: dict[str, str]) -> None:
        """Winners already carry their final names; attempt files (tables, or speculation on) are moved, and the
        ones that lost are deleted."""
        moved = [(tmp_path, self._at(name)) for tmp_path, name in winners.items() if tmp_path != self._at(name)]
        if not moved:  # every shard written under its final name: no attempt file exists, no listing needed
            return
        for tmp_path, final in moved:
            self.fs.mv(tmp_path, final)
        losers = [self._at(n) for n in self._names() if ".tmp-" in n]
        if losers:
            self.fs.rm(losers)

    def drop_all_but_rejected(self) -> None:
        self._remove_all_but({REJECTED_DIR, CONVERTING})

    def commit(self) -> None:
        """`manifest.json` and `_SUCCESS` are written (by `publish`): the dataset is visible; drop the claim."""
        self.fs.rm_file(self._at(CONVERTING))

    def abort(self) -> None:
        """Delete what this run wrote (the claim goes last, so leftovers stay recognisable)."""
        self._remove_all_but({CONVERTING})
        self.fs.rm_file(self._at(CONVERTING))


def speculative(spark: object) -> bool:
    """Whether Spark may run two attempts of a task at once (then attempt files are kept, and moved at commit)."""
    return str(spark.conf.get("spark.speculation", "false")).lower() == "true"  # type: ignore[attr-defined]
