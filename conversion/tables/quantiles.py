"""Quantile boundaries from a hash sample the survey collects: exact quantiles of the same rows on every run.

A row is in the sample at level j when the low j bits of its sample hash (`sample_hash`, from its row hash) are
zero: 1 row in 2^j, the same rows on every run, and the rows of level j+1 a subset of level j's. Each partition
keeps its selected rows at the lowest level that leaves it at most `partition_cap` of them (`PartitionSample`,
in the survey's Python worker); the driver then takes every partition's rows at one level, the higher of the
levels the partitions needed and `sample_level` (the largest that leaves at least `--quantile-sample-rows` rows
of the statistics split), and computes each column's quantiles exactly from them (`boundaries`), as Spark's
`percentile_approx` answers on a summary that holds every value. On the old pass the boundaries were a
`percentile_approx` observed on the write (its 22 sketches took about 2 s per 2,000,000 rows on 2 cores even
for rows not in the sample), and its sketches were merged in the order tasks ended: a rerun could give other
boundaries. Here the sample and its quantiles depend on the rows alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from pyspark.sql import Column

QUANTILE_SALT = "quantiles"
RELATIVE_ERROR = 1 / 1000  # percentile_approx's default accuracy: its answer for p at most this (or 1 - p) is an end


def sample_hash(row_hash: Column) -> Column:
    """A row's sample hash, as a Spark SQL column, from its row hash."""
    from pyspark.sql import functions as F

    return F.xxhash64(row_hash, F.lit(QUANTILE_SALT))


def sample_level(rows: int, sample_rows: int) -> int:
    """The level of a split of `rows` rows: the largest that leaves at least `sample_rows` of them, on average
    (0: every row)."""
    level = 0
    while level < 63 and rows >= sample_rows << (level + 1):
        level += 1
    return level


def partition_cap(sample_rows: int, partitions: int) -> int:
    """The most sampled rows a partition keeps: twice its share of `sample_rows` (a partition of many more rows
    than its share raises its own level, and so the sample's)."""
    return max(1, math.ceil(2 * sample_rows / max(1, partitions)))


def in_level(hashes: np.ndarray, level: int) -> np.ndarray:
    """Which of the sample hashes (int64) are at `level`."""
    return (hashes.view(np.uint64) & np.uint64((1 << level) - 1)) == 0


class PartitionSample:
    """A partition's sampled rows: their sample hashes and one value per numeric column (NaN: null or not finite),
    at the lowest level that keeps at most `cap` of them."""

    def __init__(self, cap: int, columns: int) -> None:
        self.cap, self.level = cap, 0
        self.hashes: list[np.ndarray] = []
        self.values: list[np.ndarray] = []
        self.rows = 0
        self.columns = columns

    def add(self, hashes: np.ndarray, values: np.ndarray) -> None:
        """Add a batch's selected rows (`values`: rows x columns)."""
        keep = in_level(hashes, self.level)
        self.hashes.append(hashes[keep])
        self.values.append(values[keep])
        self.rows += int(keep.sum())
        while self.rows > self.cap and self.level < 64:  # at 64 only the hash 0 is left (identical rows)
            self.level += 1
            hashes, values = self.arrays()
            keep = in_level(hashes, self.level)
            self.hashes, self.values, self.rows = [hashes[keep]], [values[keep]], int(keep.sum())

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The sampled rows' hashes and values."""
        if not self.hashes:
            return np.empty(0, np.int64), np.empty((0, self.columns), np.float64)
        return np.concatenate(self.hashes), np.concatenate(self.values)

    def result(self) -> tuple[int, np.ndarray, np.ndarray]:
        """(level, hashes, values): what the partition hands the driver."""
        return (self.level, *self.arrays())


@dataclass(frozen=True)
class QuantileSample:
    """The sample the boundaries came from: its level and rows."""

    level: int
    values: np.ndarray  # rows x numeric columns, NaN where null or not finite

    @staticmethod
    def of(partitions: Mapping[int, tuple[int, np.ndarray, np.ndarray]], rows: int, sample_rows: int, columns: int):
        """Every partition's rows at one level: the highest a partition needed, at least `sample_level(rows,
        sample_rows)` (`rows`: the statistics split's rows). In partition order (the quantiles do not depend on
        it)."""
        level = max([sample_level(rows, sample_rows), *(part[0] for part in partitions.values())])
        kept = []
        for _, (_, hashes, values) in sorted(partitions.items()):
            kept.append(values[in_level(hashes, level)])
        values = np.concatenate(kept) if kept else np.empty((0, columns), np.float64)
        return QuantileSample(level, values)

    def boundaries(self, names: list[str], num_quantiles: int) -> dict[str, list[float]]:
        """Each column's `num_quantiles`-quantile boundaries: its distinct quantiles, sorted."""
        probabilities = [i / num_quantiles for i in range(1, num_quantiles)]
        out = {}
        for index, name in enumerate(names):
            column = self.values[:, index]
            out[name] = sorted(set(exact_quantiles(column[~np.isnan(column)], probabilities)))
        return out


def exact_quantiles(values: np.ndarray, probabilities: list[float]) -> list[float]:
    """`percentile_approx(values, probabilities)` where its summary holds every value (Spark's
    `QuantileSummaries.query`): the smallest value for p <= 1/1000, the largest for p >= 1 - 1/1000, else the
    value of rank ceil(p * n). Empty: none. Only the wanted ranks are put in place (`np.partition`)."""
    n = len(values)
    if not n:
        return []
    ranks = [
        1 if p <= RELATIVE_ERROR else n if p >= 1 - RELATIVE_ERROR else min(max(math.ceil(p * n), 1), n)
        for p in probabilities
    ]
    placed = np.partition(values, sorted({r - 1 for r in ranks}))
    return [float(placed[r - 1]) for r in ranks]
