"""Dates and timestamps in records: int64 numbers with a unit, and the Spark expressions both ways.

- date: days since 1970-01-01;
- timestamp (Spark TIMESTAMP, an instant): microseconds since 1970-01-01T00:00:00Z, in UTC
  whatever the session's time zone;
- timestamp_ntz (Spark TIMESTAMP_NTZ, a wall-clock time without zone): microseconds from
  1970-01-01T00:00:00 to that wall-clock time, as if both were UTC (the number Spark itself keeps).

The manifest names each such feature's `logical_type`, `unit` and `timezone`; conversion,
predict and Spark readers use the expressions here, so they turn a value into the same number.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

DATE, TIMESTAMP, TIMESTAMP_NTZ = "date", "timestamp", "timestamp_ntz"
UNITS = {DATE: "days", TIMESTAMP: "microseconds", TIMESTAMP_NTZ: "microseconds"}
TIMEZONES = {DATE: None, TIMESTAMP: "UTC", TIMESTAMP_NTZ: None}
_EPOCH_NTZ = "TIMESTAMP_NTZ'1970-01-01 00:00:00'"


def logical_type(spark_type: str) -> str | None:
    """The logical type of a Spark type (its `simpleString()`), None when it is no date or timestamp."""
    return spark_type if spark_type in UNITS else None


def to_number(name: str, logical: str) -> Any:
    """The Spark column `name` (of type `logical`) as its record number (a long)."""
    from pyspark.sql import functions as F

    column = F.col(f"`{name}`")
    if logical == DATE:
        return F.unix_date(column).cast("long")
    if logical == TIMESTAMP:
        return F.unix_micros(column)
    return F.expr(f"timestampdiff(MICROSECOND, {_EPOCH_NTZ}, `{name}`)")  # exact, no session time zone


def from_number(name: str, logical: str) -> Any:
    """The record column `name` (a long) as the Spark type `logical` it was converted from."""
    from pyspark.sql import functions as F

    column = F.col(f"`{name}`")
    if logical == DATE:
        return F.date_from_unix_date(column.cast("int"))
    if logical == TIMESTAMP:
        return F.timestamp_micros(column)
    # timestampadd(MICROSECOND, ...) takes an int: a day-time interval holds the whole long
    return F.expr(f"{_EPOCH_NTZ} + make_dt_interval(0, 0, 0, CAST(`{name}` AS DECIMAL(18, 0)) / 1000000)")


def number_of(text: str, logical: str) -> int:
    """A value given as text (an integer in the unit, or ISO 8601) as its record number.

    An ISO timestamp without a zone is read as UTC for `timestamp`.

    Raises:
        ValueError: `text` is neither.
    """
    try:
        return int(text)
    except ValueError:
        pass
    if logical == DATE:
        return (date.fromisoformat(text) - date(1970, 1, 1)).days
    moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)  # 3.10: no Z
    if logical == TIMESTAMP_NTZ:
        moment = moment.replace(tzinfo=None)
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    start = datetime(1970, 1, 1, tzinfo=None if logical == TIMESTAMP_NTZ else timezone.utc)
    delta = moment - start
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
