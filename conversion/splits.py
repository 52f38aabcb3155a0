"""The one split rule: a record's split is decided by the SHA-256 of its key alone.

The first 8 bytes of SHA-256(key), as an unsigned 64-bit number, are compared with the
cumulative split fractions scaled to 2^64. Reruns agree, and adding records moves none.
Images use their relative path as key; tables their key column (or a hash of the row) as text.
The same rule runs in Python (`split_of`) and in Spark SQL (`split_column`).
"""

from __future__ import annotations

import bisect
import hashlib
from typing import Any

Splits = tuple[tuple[str, float], ...]


def split_position(key: str) -> int:
    """The unsigned 64-bit position of a key: the first 8 bytes of its SHA-256."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big")


def split_bounds(splits: Splits) -> list[int]:
    """Each split's exclusive upper bound on the 64-bit position."""
    bounds, cumulative = [], 0.0
    for _, fraction in splits:
        cumulative += fraction
        bounds.append(int(cumulative * 2**64))
    return bounds


def split_of(position: int, splits: Splits, bounds: list[int]) -> str:
    """The split whose range holds `position` (the last split takes what rounding leaves)."""
    return splits[min(bisect.bisect_right(bounds, position), len(splits) - 1)][0]


def assign_split(key: str, splits: Splits) -> str:
    """The split of one key."""
    return split_of(split_position(key), splits, split_bounds(splits))


def split_column(key: Any, splits: Splits) -> Any:
    """The same rule as a Spark SQL column over a string column `key`."""
    from pyspark.sql import functions as F

    return split_of_hex(F.sha2(key, 256), splits)


def with_split(df: Any, key: Any, splits: Splits, name: str) -> Any:
    """`df` with the split of string column `key` as column `name`, the digest computed once a row.

    The rule's CASE tests the digest once per bound; written inline (`split_column`), Spark computes the SHA-256
    again in every WHEN a row reaches (a fifth of the rows at 80/10/10: twice). As a column of its own, referenced
    twice, it stays a column: 2,000,000 keys on 2 cores, warm, 1.64-1.93 s against 1.78-2.15 s inline."""
    from pyspark.sql import functions as F

    digest = "_tfrecordpipe_split_digest"  # a reserved prefix: no source column has it (conversion.tables.schema)
    with_digest = df.withColumn(digest, F.sha2(key, 256))
    return with_digest.withColumn(name, split_of_hex(F.col(digest), splits)).drop(digest)


def split_of_hex(digest: Any, splits: Splits) -> Any:
    """The split of a Spark SQL column of SHA-256 digests in lowercase hex (64 digits).

    The digest is compared with each bound written as 16 hex digits, without parsing (a base conversion and a
    decimal per row cost more than the hash): hex strings of one length order as their numbers do, and the 64
    digits are below a bound exactly when their first 16, the position, are (equal first 16 make the longer
    string the greater, as `bisect_right` puts a position equal to a bound above it). No substring is cut:
    measuring its characters and copying them cost more a row than the comparison."""
    from pyspark.sql import functions as F

    expr = None
    for (name, _), bound in zip(splits[:-1], split_bounds(splits)):
        test = digest < F.lit(f"{bound:016x}") if bound < 2**64 else digest.isNotNull()
        expr = F.when(test, name) if expr is None else expr.when(test, name)
    last = splits[-1][0]
    return expr.otherwise(last) if expr is not None else F.lit(last)
