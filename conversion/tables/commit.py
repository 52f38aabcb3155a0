"""The commit of a table conversion: a full one (version 1, or an overwrite) or an append, with its file index and
value counts (`conversion.tables.sidecar`) in the run folder."""

from __future__ import annotations

from dataclasses import replace

from conversion.publish import RunFolder, in_folder, publish
from conversion.tables.appending import AppendPlan
from conversion.tables.merge import merge_manifests
from conversion.tables.sidecar import Sidecar, merged, write_sidecar
from dataset.file_index import FileIndex, merge, write_index
from dataset.manifest import Manifest
from dataset.versions import Version


def commit_table(
    staging: RunFolder,
    manifest: Manifest,
    sidecar: Sidecar,
    files: FileIndex | None,
    plan: AppendPlan | None,
    bad: int,
    total: int,
    limit: float,
) -> tuple[Manifest, Version, tuple[str, ...]]:
    """Commit this run's `manifest` (its rows alone, shard paths in the run folder) as the next version: as it is,
    or (`plan`) merged onto the parent's. `files` (None: the source is no folder of files) and `sidecar` are
    written beside it. The reject limit counts this run's rows alone (`bad` of `total`). Returns the version's
    manifest, the version, and the string columns whose value counts are not exact (over the sidecar's cap).

    Raises:
        RejectLimitExceeded, ConversionError, DatasetError, CommitConflict: as `conversion.publish.publish`.
    """
    url = staging.output_url
    if plan is None:
        if files is None:
            return manifest, publish(staging, manifest, bad, total, limit, "rows"), ()
        computed = replace(sidecar, boundaries_version=(staging.parent.number if staging.parent else 0) + 1)
        table = replace(manifest.table, value_counts=write_sidecar(url, staging.run, computed))
        located = replace(manifest, file_index=write_index(url, staging.run, files), table=table)
        return located, publish(staging, located, bad, total, limit, "rows"), ()
    both = merged(plan.sidecar, sidecar)
    version = merge_manifests(plan.parent.manifest, in_folder(manifest, staging.run), both.counts, both.num_distinct)
    index = write_index(url, staging.run, merge(plan.index, files or FileIndex.empty()))
    table = replace(version.table, value_counts=write_sidecar(url, staging.run, both))
    version = replace(version, file_index=index, table=table)
    inexact = tuple(name for name, complete in both.complete.items() if not complete)
    committed = publish(staging, version, bad, total, limit, "rows", operation="append", in_run=False)
    return version, committed, inexact
