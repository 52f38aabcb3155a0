"""Vacuum: delete the files of versions no longer kept, and what killed runs left, never what a kept version lists.

A file goes when it is
* the manifest of a version not among the `keep` newest (the current one is always kept);
* a shard or file index (`Manifest.file_index`) that such versions list and no kept one does, wherever it lies
  (the small shards a compaction replaced sit in run folders whose other shards are still listed);
* a file in the run folder of such a version that no kept version lists or wrote;
* task plans (`_plan/`) or a shard-named file that no version lists in the folder of a run that committed, once
  older than `min_age_s`;
* in a run folder no version names, or a shard-named file at the root no version lists (a killed run, a run
  refused by the reject limit, a writer from before versions), and every file of that run folder is older than
  `min_age_s`: a writer still running has written a file more recently than that.
Files that no conversion writes (neither a run folder, a shard name, nor a version file) are never touched.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime

from dataset.errors import OptionError
from dataset.layout import MANIFEST, REJECTED_DIR, RUN_PREFIX, SUCCESS, VERSIONS_DIR, DatasetFolder, index_file_name
from dataset.versions import Version, all_versions, shard_paths

DEFAULT_MIN_AGE_S = 24 * 3600
# `<split>-00000-of-00002[-<run token>].tfrecord[.gz][.idx][.tmp-<attempt>]`: any shard name `layout` gives
_SHARD_NAME = re.compile(r"^[^/]+-\d{5,}-of-\d{5,}(-[0-9a-z]+)?\.tfrecord(\.gz)?(\.idx)?(\.tmp-.*)?$")
TASK_PLANS_DIR = "_plan"  # conversion.images.task_plans.PLAN_FOLDER: removed before a commit, left by a killed run
_VERSION_FILE = re.compile(rf"^{VERSIONS_DIR}/(\d{{8}})\.json$")


@dataclass(frozen=True)
class Doomed:
    path: str  # relative to the dataset folder
    bytes: int
    reason: str


@dataclass(frozen=True)
class VacuumPlan:
    data_url: str
    kept: tuple[int, ...]
    dropped: tuple[int, ...]
    files: tuple[Doomed, ...]

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    def text(self, deleted: bool) -> str:
        verb = "deleted" if deleted else "would delete"
        lines = [f"  {f.path}  {f.bytes} bytes  ({f.reason})" for f in self.files]
        kept = ", ".join(map(str, self.kept)) or "none"
        lines.append(
            f"{verb} {len(self.files)} files, {self.bytes} bytes, from {self.data_url}; versions kept: {kept}"
            + ("" if deleted or not self.files else " (dry run: pass --yes to delete)")
        )
        return "\n".join(lines)


def _mtime(info: dict) -> float:
    value = info.get("mtime", info.get("LastModified", info.get("last_modified")))
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value) if value is not None else 0.0


def plan_vacuum(data_url: str, keep: int, min_age_s: float = DEFAULT_MIN_AGE_S) -> VacuumPlan:
    """What `vacuum` deletes (nothing is deleted here).

    Raises:
        OptionError: `keep` is below 1.
        DatasetError: the folder holds no committed dataset.
    """
    if keep < 1:
        raise OptionError(f"--keep must be at least 1 (the current version is always kept), got {keep}")
    versions = all_versions(data_url)
    kept, dropped = versions[-keep:], versions[:-keep]
    folder = DatasetFolder(data_url)
    fs = folder.fs
    root = folder.root.rstrip("/")
    fs.invalidate_cache(root)
    found = {path[len(root) + 1 :]: info for path, info in fs.find(root, detail=True).items()}
    keep_paths, keep_runs = _owned(kept)
    drop_paths, drop_runs = _owned(dropped)
    run_age: dict[str, float] = {}
    for path, info in found.items():
        top = path.split("/", 1)[0]
        run_age[top] = max(run_age.get(top, 0.0), _mtime(info))
    legacy = not any(_VERSION_FILE.match(p) for p in found)
    doomed = []
    now = time.time()
    for path, info in sorted(found.items()):
        top = path.split("/", 1)[0]
        size = int(info.get("size") or 0)
        match = _VERSION_FILE.match(path)
        if match:
            if int(match.group(1)) in {v.number for v in dropped}:
                doomed.append(Doomed(path, size, "manifest of a version not kept"))
            continue
        if path in keep_paths or (legacy and path in (MANIFEST, SUCCESS)):
            continue
        if path in (MANIFEST, SUCCESS) or top in (VERSIONS_DIR, REJECTED_DIR):
            continue
        if path in drop_paths:  # even in a run folder that holds a kept version's files (a compaction's inputs)
            doomed.append(Doomed(path, size, "only in versions not kept"))
        elif top in keep_runs:  # a kept version's run folder: its reports stay; what no version lists goes
            if _leftover(path) and now - _mtime(info) >= min_age_s:
                doomed.append(Doomed(path, size, "in no version, left in the folder of a run that committed"))
        elif top in drop_runs:
            doomed.append(Doomed(path, size, "only in versions not kept"))
        elif top.startswith(RUN_PREFIX) or ("/" not in path and _SHARD_NAME.match(path)):
            if now - run_age[top] >= min_age_s:
                doomed.append(Doomed(path, size, "in no version, written by a run that did not commit"))
    doomed.sort(key=lambda d: (not _VERSION_FILE.match(d.path), d.path))  # manifests first: none lists a gone file
    return VacuumPlan(data_url, tuple(v.number for v in kept), tuple(v.number for v in dropped), tuple(doomed))


def _leftover(path: str) -> bool:
    """A file in a run folder that only a writer's unfinished work leaves: task plans, a shard-named file (an
    attempt's or a shard no version lists)."""
    rest = path.split("/", 1)[1] if "/" in path else ""
    return rest.startswith(f"{TASK_PLANS_DIR}/") or bool(_SHARD_NAME.match(rest))


def listed_paths(version: Version) -> set[str]:
    """The files `version`'s manifest names: its shards, its file index and a table's value counts, if it has them,
    and each shard's record index (`<shard>.idx`, named or not: an index belongs to its shard, kept and dropped
    with it, so a rollback to a version written before its indexes keeps them)."""
    manifest = version.manifest
    index = manifest.file_index  # a rollback lists the index of the version it restores
    counts = manifest.table.value_counts if manifest.table is not None else None
    shards = shard_paths(manifest)
    return shards | {index_file_name(path) for path in shards} | {path for path in (index, counts) if path}


def _owned(versions: list[Version]) -> tuple[set[str], set[str]]:
    """The files that `versions` list, and their run folders (those they wrote, and those holding their files)."""
    paths: set[str] = set()
    runs: set[str] = set()
    for version in versions:
        listed = listed_paths(version)
        paths |= listed
        runs |= {path.split("/", 1)[0] for path in listed if path.startswith(RUN_PREFIX)}
        if version.info.run:
            runs.add(version.info.run)
    return paths, runs


def vacuum(plan: VacuumPlan) -> None:
    """Delete what `plan` lists, version manifests first."""
    folder = DatasetFolder(plan.data_url)
    fs = folder.fs
    if plan.files:
        fs.rm([folder.path(f.path) for f in plan.files])
    for top in {f.path.split("/", 1)[0] for f in plan.files if "/" in f.path and f.path.startswith(RUN_PREFIX)}:
        path = folder.path(top)
        fs.invalidate_cache(path)
        if fs.exists(path) and not fs.find(path):
            fs.rm(path, recursive=True)  # an emptied run folder (local disk; object stores have no folders)
