"""The statistics of version N+1 from version N's and the appended rows' alone: merged, not recomputed.

Exact: counts (rows, splits, labels, nulls, NaN, infinities, features left out), min and max, the mean and the
sample standard deviation (count, mean and M2 = stddev² (count - 1), combined by Chan et al.'s parallel formula),
and the string vocabularies, from each version's full value counts (`conversion.tables.sidecar`; a column with
more distinct values than the sidecar keeps is exact only up to the bound stated there). The quantile
boundaries are carried from the parent: training reads the statistics of the version it trains on, and
boundaries that move with every append would change a model's feature spec; the rank error the appended rows
add is at most their share of the column's values (`boundary_rank_bound`). `--mode overwrite` recomputes them.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Callable

from dataset.manifest import ColumnStats, Feature, Manifest, SplitInfo, TableColumn

ValueCounts = dict[str, int]  # one string column's full value counts over the statistics split


def _plus(a: int | None, b: int | None) -> int | None:
    return None if a is None and b is None else (a or 0) + (b or 0)


def _extreme(pick: Callable[[list[float]], float], a: float | None, b: float | None) -> float | None:
    present = [v for v in (a, b) if v is not None]
    return pick(present) if present else None


def moments(
    count_a: int, mean_a: float | None, std_a: float | None, count_b: int, mean_b: float | None, std_b: float | None
) -> tuple[int, float | None, float | None]:
    """(count, mean, sample stddev) of two parts' union, by Chan et al.'s parallel formula.

    A part's M2 (sum of squared deviations from its mean) is stddev² (count - 1); Spark's `stddev_samp` is None
    for fewer than 2 values, as here.
    """
    if not count_a or not count_b:
        return (count_a, mean_a, std_a) if count_a else (count_b, mean_b, std_b)
    count = count_a + count_b
    m2_a = (std_a or 0.0) ** 2 * (count_a - 1)
    m2_b = (std_b or 0.0) ** 2 * (count_b - 1)
    delta = mean_b - mean_a
    mean = mean_a + delta * count_b / count
    m2 = m2_a + m2_b + delta * delta * count_a * count_b / count
    return count, mean, math.sqrt(m2 / (count - 1))


def top_values(counts: ValueCounts, keep: int) -> tuple[tuple[str, int], ...]:
    """The `keep` most frequent values, ties by value (the order the conversion's Spark ranking uses)."""
    return tuple(sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:keep])


def merge_counts(a: ValueCounts, b: ValueCounts) -> ValueCounts:
    return dict(Counter(a) + Counter(b))


def merge_column(
    old: ColumnStats,
    new: ColumnStats,
    counts: ValueCounts | None,
    max_vocab: int,
    num_distinct: int | None = None,
) -> ColumnStats:
    """One column's statistics over both parts. Strings: `counts` are the merged full value counts (None: a
    numeric column); `num_distinct`, when given, replaces their length (a column over the sidecar's cap)."""
    if counts is not None:
        distinct = len(counts) if num_distinct is None else num_distinct
        return ColumnStats(
            null_count=_plus(old.null_count, new.null_count),
            num_distinct=distinct,
            vocabulary=top_values(counts, max_vocab),
        )
    count, mean, stddev = moments(old.count or 0, old.mean, old.stddev, new.count or 0, new.mean, new.stddev)
    return ColumnStats(
        null_count=_plus(old.null_count, new.null_count),
        count=count,
        mean=mean,
        stddev=stddev,
        min=_extreme(min, old.min, new.min),
        max=_extreme(max, old.max, new.max),
        nan_count=_plus(old.nan_count, new.nan_count),
        inf_count=_plus(old.inf_count, new.inf_count),
        boundaries=old.boundaries,  # carried (module docstring)
    )


def boundary_rank_bound(computed_on: int, count: int) -> float:
    """The most the appended values can move a carried boundary's rank: their share of the column's values
    (a boundary at rank p of the `computed_on` values it came from lies at rank p ± this among `count`)."""
    return (count - computed_on) / count if count else 0.0


def labels_after(old: tuple[str, ...], new: tuple[str, ...]) -> tuple[str, ...]:
    """Label ids stay: the parent's labels keep their index, labels first seen now follow in sorted order."""
    seen = set(old)
    return old + tuple(sorted(label for label in new if label not in seen))


def _feature(old: Feature, new: Feature | None) -> Feature:
    if new is None or not new.null_count:
        return old
    return dataclasses.replace(old, null_count=old.null_count + new.null_count, default=new.default)


def _split(old: SplitInfo | None, new: SplitInfo | None) -> SplitInfo:
    if old is None or new is None:
        return old or new  # type: ignore[return-value]
    labels = dict(sorted(merge_counts(old.label_counts, new.label_counts).items()))
    return SplitInfo(old.num_records + new.num_records, old.files + new.files, labels)


def merge_manifests(
    parent: Manifest, appended: Manifest, counts: dict[str, ValueCounts], distinct: dict[str, int] | None = None
) -> Manifest:
    """Version N+1: `parent`'s shards then `appended`'s (the manifest of the new rows alone, its shard paths
    already in their run folder) per split, and the merged statistics. `counts` holds each string column's
    merged full value counts; `distinct` overrides a column's distinct count (over the sidecar's cap).
    """
    if parent.table is None or appended.table is None:
        raise ValueError("merge_manifests merges table manifests")
    max_vocab = int(parent.options.get("max_vocab", 100))
    columns = {
        name: TableColumn(
            column.source_type,
            merge_column(
                column.stats,
                appended.table.columns[name].stats,
                counts.get(name),
                max_vocab,
                (distinct or {}).get(name),
            ),
        )
        for name, column in parent.table.columns.items()
    }
    splits = {
        name: _split(parent.splits.get(name), appended.splits.get(name))
        for name in sorted(set(parent.splits) | set(appended.splits))
    }
    rejected = merge_counts(parent.num_rejected, appended.num_rejected)
    return dataclasses.replace(
        parent,
        created_at=appended.created_at,
        labels=labels_after(parent.labels, appended.labels),
        features={name: _feature(f, appended.features.get(name)) for name, f in parent.features.items()},
        splits=splits,
        num_files_seen=parent.num_files_seen + appended.num_files_seen,
        num_rejected=dict(sorted(rejected.items())),
        table=dataclasses.replace(parent.table, columns=columns),
    )
