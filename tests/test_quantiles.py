"""The quantile boundaries' hash sample and its exact quantiles (`conversion.tables.quantiles`)."""

from __future__ import annotations

import numpy as np
import pytest
from pyspark.sql import functions as F

from conversion.tables.quantiles import (
    PartitionSample,
    QuantileSample,
    exact_quantiles,
    in_level,
    partition_cap,
    sample_level,
)


def test_exact_quantiles_are_what_percentile_approx_answers_on_up_to_499_values(spark):
    """Under 500 values Spark's summary (accuracy 1,000) is exact: its answers are these, ties, ends and all. From
    500 values on, its answer may be the value one rank below (its rank error of 1/1000)."""
    rng = np.random.default_rng(7)
    cases = {
        "normal": rng.normal(0, 1, 499),
        "ties": rng.integers(0, 5, 480).astype(float),
        "one": np.array([3.5]),
        "two": np.array([2.0, -1.0]),
        "negative": -rng.exponential(10, 41),
        "integers": rng.integers(-(2**40), 2**40, 250).astype(float),
    }
    for num_quantiles in (2, 4, 10, 100, 1000):
        probabilities = [i / num_quantiles for i in range(1, num_quantiles)]
        rows = [(name, float(v)) for name, values in cases.items() for v in values]
        frame = spark.createDataFrame(rows, "name string, v double")
        spark_answers = {
            r["name"]: r["q"]
            for r in frame.groupBy("name").agg(F.percentile_approx("v", probabilities, 1000).alias("q")).collect()
        }
        for name, values in cases.items():
            assert exact_quantiles(values, probabilities) == spark_answers[name], (name, num_quantiles)
    assert exact_quantiles(np.array([]), [0.5]) == []


def test_sample_levels_and_caps():
    assert [sample_level(rows, 1000) for rows in (0, 999, 1000, 1999, 2000, 6000, 8000, 8_000_000)] == [
        0, 0, 0, 0, 1, 2, 3, 12,
    ]  # fmt: skip
    assert sample_level(2**70, 1) == 63
    assert [partition_cap(200_000, p) for p in (1, 8, 3, 1_000_000)] == [400_000, 50_000, 133_334, 1]


def test_a_partition_keeps_exactly_its_rows_at_the_level_its_cap_allows():
    rng = np.random.default_rng(3)
    hashes = rng.integers(-(2**63), 2**63 - 1, 20_000, dtype=np.int64)
    values = rng.normal(size=(20_000, 3))
    sample = PartitionSample(cap=3000, columns=3)
    for start in range(0, 20_000, 1_500):  # batches, each its rows at the level reached so far
        keep = in_level(hashes[start : start + 1500], sample.level)
        sample.add(hashes[start : start + 1500][keep], values[start : start + 1500][keep])
    level, kept_hashes, kept_values = sample.result()
    want = in_level(hashes, level)
    assert level == 3 and int(want.sum()) <= 3000 < int(in_level(hashes, 2).sum())
    assert kept_hashes.tolist() == hashes[want].tolist() and np.array_equal(kept_values, values[want])


def test_the_sample_is_every_partitions_rows_at_one_level():
    rng = np.random.default_rng(5)
    hashes = rng.integers(-(2**63), 2**63 - 1, 64_000, dtype=np.int64)
    values = rng.normal(size=(64_000, 2))
    values[::7, 1] = np.nan  # nulls and non-finite values of the second column
    parts = {}
    for partition, (lo, hi, cap) in enumerate(((0, 40_000, 6_000), (40_000, 60_000, 6_000), (60_000, 64_000, 6_000))):
        sample = PartitionSample(cap, 2)
        sample.add(hashes[lo:hi], values[lo:hi])
        parts[partition] = sample.result()
    assert [part[0] for part in parts.values()] == [3, 2, 0]
    for rows, level in ((64_000, 3), (640_000, 6)):  # the partitions' highest level, or the split's if higher
        sample = QuantileSample.of(parts, rows, 10_000, 2)
        want = values[in_level(hashes, level)]
        assert sample.level == level and np.array_equal(sample.values, want, equal_nan=True)
        got = sample.boundaries(["a", "b"], 4)
        b = want[:, 1][~np.isnan(want[:, 1])]
        assert got == {
            "a": sorted(set(exact_quantiles(want[:, 0], [0.25, 0.5, 0.75]))),
            "b": sorted(set(exact_quantiles(b, [0.25, 0.5, 0.75]))),
        }
    assert QuantileSample.of({}, 0, 10, 2).boundaries(["a", "b"], 4) == {"a": [], "b": []}


@pytest.mark.parametrize("hashes", [np.array([0, 4, -4, 2, -1, np.iinfo(np.int64).min], dtype=np.int64)])
def test_levels_read_the_hash_as_unsigned_bits(hashes):
    assert in_level(hashes, 2).tolist() == [True, True, True, False, False, True]
    assert in_level(hashes, 63).tolist() == [True, False, False, False, False, True]


def test_more_identical_rows_than_the_cap_stop_at_level_64():
    sample = PartitionSample(cap=2, columns=1)
    sample.add(np.zeros(5, dtype=np.int64), np.ones((5, 1)))  # five rows of the hash 0: in every level
    level, hashes, values = sample.result()
    assert (level, hashes.tolist(), values.tolist()) == (64, [0] * 5, [[1.0]] * 5)
    assert QuantileSample.of({0: sample.result()}, 5, 1, 1).boundaries(["a"], 2) == {"a": [1.0]}
