"""The split rule in Spark SQL (`split_column`) against the rule in Python (`assign_split`, `split_of`)."""

from __future__ import annotations

import hashlib

from pyspark.sql import functions as F

from conversion.splits import assign_split, split_bounds, split_column, split_of, split_of_hex

SPLIT_SETS = (
    (("train", 0.8), ("validation", 0.1), ("test", 0.1)),
    (("a", 0.5), ("b", 0.0), ("c", 0.5)),
    (("only", 1.0),),
    (("x", 0.3), ("y", 0.7)),
    (("tiny", 1e-6), ("rest", 1 - 1e-6)),  # a bound of 11 hex digits, written as 16
)


def test_spark_splits_20000_keys_as_python_does(spark):
    keys = [f"key-{i}" for i in range(10_000)] + [str(i * 7919) for i in range(9_999)] + [""]
    frame = spark.createDataFrame([(k,) for k in keys], "k string")
    for splits in SPLIT_SETS:
        got = dict(frame.select("k", split_column(F.col("k"), splits).alias("s")).collect())
        assert got == {k: assign_split(k, splits) for k in keys}


def test_spark_splits_digests_at_the_bounds_as_python_does(spark):
    """Digests whose first 16 digits are a bound, one below and one above it, with tails of zeros, of f's and of
    a real digest's digits: the tail never moves a digest across a bound."""
    tails = ("0" * 48, "f" * 48, hashlib.sha256(b"tail").hexdigest()[:48])
    for splits in SPLIT_SETS:
        bounds = split_bounds(splits)
        positions = sorted({0, 2**63, 2**64 - 1, *(b + d for b in bounds for d in (-1, 0, 1))})
        positions = [p for p in positions if 0 <= p < 2**64]
        digests = [(f"{p:016x}{tail}", p) for p in positions for tail in tails]
        frame = spark.createDataFrame([(d,) for d, _ in digests], "d string")
        got = dict(frame.select("d", split_of_hex(F.col("d"), splits).alias("s")).collect())
        assert got == {d: split_of(p, splits, bounds) for d, p in digests}
