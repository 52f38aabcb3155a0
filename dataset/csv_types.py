"""Column types of a CSV read as text, by pandas' rules: missing and non-finite spellings, int64, float, bool;
ISO dates and timestamps by Spark's rules.

Spark's own inference turns a numeric column holding one `NA` or `inf` into a string column; pandas reads
such a column as a number with a missing or infinite value. Here every column is read as text, profiled
in one pass, and cast to the narrowest type all its values parse as.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

# pandas' default na_values (pandas._libs.parsers.STR_NA_VALUES in pandas 2.x), matched exactly as pandas does.
NA_SPELLINGS = (
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
)  # fmt: skip
# Of those, the ones that spell a float NaN: in a numeric column they stay NaN (the value pandas holds too).
NAN_SPELLINGS = ("-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "NaN", "nan")
POSITIVE_INF = ("inf", "+inf", "infinity", "+infinity")  # compared lower-cased, as pandas' parser does
NEGATIVE_INF = ("-inf", "-infinity")
TRUE_SPELLINGS = ("True", "TRUE", "true")  # pandas' defaults
FALSE_SPELLINGS = ("False", "FALSE", "false")
INT_PATTERN = r"^\s*[+-]?[0-9]+\s*$"
FLOAT_PATTERN = r"^\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*$"
ISO_DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"  # what Spark's CSV inference takes as a date
TIMESTAMP_PATTERN = r"^\s*[0-9]{4}-[0-9]{1,2}"  # a candidate for Spark's timestamp parsing
DATETIME_OPTIONS = ("dateformat", "timestampformat", "timezone", "locale", "enabledatetimeparsingfallback")
# A text column is refused as "numeric but for a few values" when its non-numbers take at most this many
# distinct values and at most this share of its values.
FEW_VALUES = 3
FEW_SHARE = 0.1


def _col(name: str) -> Column:
    return F.col(f"`{name}`")


def _sql_name(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _try_cast(name: str, sql_type: str, trimmed: bool = True) -> Column:
    """`try_cast` (null where the text does not parse, under ANSI mode too): PySpark 3.5's Column lacks it."""
    value = f"trim({_sql_name(name)})" if trimmed else _sql_name(name)
    return F.expr(f"try_cast({value} AS {sql_type})")


@dataclass(frozen=True)
class Spellings:
    """Which texts mean missing: pandas' defaults, or only the empty text when the user named a `nullValue`."""

    missing: tuple[str, ...] = NA_SPELLINGS

    @property
    def blank(self) -> tuple[str, ...]:
        """Missing in any column (the NaN spellings are a float's value in a numeric column)."""
        return tuple(s for s in self.missing if s not in NAN_SPELLINGS)

    @property
    def nan(self) -> tuple[str, ...]:
        """A float NaN in a numeric column, whatever means missing."""
        return NAN_SPELLINGS


@dataclass(frozen=True)
class ColumnProfile:
    """Counts over one text column's values (rows that parse as CSV only)."""

    name: str
    values: int  # neither null nor a missing spelling (NaN spellings included)
    ints: int
    int32s: int  # ints that fit 32 bits: the column is IntegerType, as Spark infers (its row hashes stay the same)
    floats: int  # ints, decimals, exponents, inf and NaN spellings
    bools: int
    dates: int
    timestamps: int
    spelled_missing: int  # non-empty missing spellings other than NaN's (NA, null, None, ...)
    nans: int  # NaN spellings: NaN in a numeric column, missing in a text column
    infs: int  # inf spellings: infinite in a numeric column
    undecoded: int  # values holding U+FFFD (a byte the encoding did not decode, or the character itself)

    def data_type(self) -> T.DataType:
        """The narrowest type every value parses as (pandas' order: int64, float, bool; then date, timestamp)."""
        if self.values == 0:
            return T.DoubleType()  # no value at all: pandas gives float64 (every value missing)
        for count, data_type in (
            (self.int32s, T.IntegerType()),
            (self.ints, T.LongType()),
            (self.floats, T.DoubleType()),
            (self.bools, T.BooleanType()),
            (self.dates, T.DateType()),
            (self.timestamps, T.TimestampType()),
        ):
            if count == self.values:
                return data_type
        return T.StringType()

    def almost_numeric(self) -> bool:
        """Numbers in all but a few values: most likely a missing spelling this job does not know."""
        others = self.values - self.floats
        return self.floats > 0 and 0 < others <= FEW_SHARE * self.values

    def read_as(self, data_type: T.DataType, spellings: Spellings) -> tuple[int, int]:
        """(values read as missing from a spelling such as NA, values read as non-finite floats)."""
        if isinstance(data_type, T.DoubleType):
            return self.spelled_missing, self.nans + self.infs
        if isinstance(data_type, T.StringType):
            return self.spelled_missing + (self.nans if "NaN" in spellings.missing else 0), 0
        return self.spelled_missing, 0


def _isin(value: Column, texts: tuple[str, ...] | list[str]) -> Column:
    return value.isin(*texts) if texts else F.lit(False)


def _checks(name: str, spellings: Spellings, datetime_options: dict[str, str]) -> dict[str, Column]:
    value = _col(name)
    trimmed = F.trim(value)
    present = value.isNotNull() & ~_isin(value, spellings.blank)
    number = (
        trimmed.rlike(FLOAT_PATTERN) | F.lower(trimmed).isin(*POSITIVE_INF, *NEGATIVE_INF) | _isin(value, spellings.nan)
    )
    dated = "dateformat" in datetime_options
    return {
        "present": present,
        "int": present & trimmed.rlike(INT_PATTERN) & _try_cast(name, "BIGINT").isNotNull(),
        "int32": present & trimmed.rlike(INT_PATTERN) & _try_cast(name, "INT").isNotNull(),
        "float": present & number,
        "bool": present & value.isin(*TRUE_SPELLINGS, *FALSE_SPELLINGS),
        "date": present
        & (F.lit(True) if dated else value.rlike(ISO_DATE_PATTERN))
        & _parsed(value, "DATE", datetime_options).isNotNull(),
        "timestamp": present
        & (F.lit(True) if "timestampformat" in datetime_options else value.rlike(TIMESTAMP_PATTERN))
        & _parsed(value, "TIMESTAMP", datetime_options).isNotNull(),
        "spelled_missing": _isin(value, [s for s in spellings.blank if s]),
        "nans": _isin(value, spellings.nan),
        "infs": F.lower(trimmed).isin(*POSITIVE_INF, *NEGATIVE_INF),
        "undecoded": value.contains("\ufffd"),
    }


def _parsed(value: Column, sql_type: str, datetime_options: dict[str, str]) -> Column:
    """The text as Spark's CSV reader parses a `sql_type` field (its date and timestamp rules, the user's formats)."""
    quoted = F.concat(F.lit('"'), F.regexp_replace(value, '"', '""'), F.lit('"'))
    options = {"quote": '"', "escape": '"', "sep": ",", **datetime_options, "mode": "PERMISSIVE"}
    return F.from_csv(quoted, f"v {sql_type}", options).getField("v")


def profile(frame: DataFrame, names: list[str], spellings: Spellings, options: dict[str, str]) -> list[ColumnProfile]:
    """One pass over `frame` (text columns) counting, per column, the values of each kind."""
    datetime_options = {k: v for k, v in options.items() if k.lower() in DATETIME_OPTIONS}
    datetime_options = {k.lower(): v for k, v in datetime_options.items()}
    kinds = (
        "present",
        "int",
        "int32",
        "float",
        "bool",
        "date",
        "timestamp",
        "spelled_missing",
        "nans",
        "infs",
        "undecoded",
    )
    aggregates = []
    for name in names:
        checks = _checks(name, spellings, datetime_options)
        aggregates += [F.count(F.when(checks[kind], 1)) for kind in kinds]
    row = frame.agg(*aggregates).first() if names else ()
    per = len(kinds)
    return [ColumnProfile(name, *[int(row[i * per + k]) for k in range(per)]) for i, name in enumerate(names)]


def offending_values(frame: DataFrame, name: str, spellings: Spellings, limit: int = FEW_VALUES + 1) -> list[str]:
    """Up to `limit` distinct values of a column that are neither missing nor a number, sorted."""
    checks = _checks(name, spellings, {})
    rows = frame.where(checks["present"] & ~checks["float"]).select(_col(name)).distinct().limit(limit).collect()
    return sorted(r[0] for r in rows)


def typed(name: str, data_type: T.DataType, spellings: Spellings, options: dict[str, str]) -> Column:
    """The text column as `data_type`: missing spellings null, inf and NaN spellings non-finite floats,
    numbers trimmed as pandas does; dates and timestamps by Spark's CSV rules; null where a value does not
    parse (only possible with a type the user gave)."""
    value = _col(name)
    trimmed = F.trim(value)
    datetime_options = {k.lower(): v for k, v in options.items() if k.lower() in DATETIME_OPTIONS}
    if isinstance(data_type, T.StringType):
        return F.when(~_isin(value, spellings.missing), value).alias(name)
    present = value.isNotNull() & ~_isin(value, spellings.blank)
    if isinstance(data_type, T.BooleanType):
        lowered = F.lower(trimmed)
        out: Any = F.when(lowered == "true", F.lit(True)).when(lowered == "false", F.lit(False))
    elif isinstance(data_type, (T.ByteType, T.ShortType, T.IntegerType, T.LongType)):
        out = F.when(trimmed.rlike(INT_PATTERN), _try_cast(name, data_type.simpleString()))
    elif isinstance(data_type, (T.FloatType, T.DoubleType, T.DecimalType)):
        lowered = F.lower(trimmed)
        number = F.when(trimmed.rlike(FLOAT_PATTERN), _try_cast(name, "DOUBLE"))
        out = (
            F.when(lowered.isin(*POSITIVE_INF), F.lit(float("inf")))
            .when(lowered.isin(*NEGATIVE_INF), F.lit(float("-inf")))
            .when(_isin(value, spellings.nan), F.lit(float("nan")))
            .otherwise(number)
        )
        if not isinstance(data_type, T.DoubleType):
            out = out.cast(data_type)
    else:  # dates, timestamps and anything else Spark's CSV reader parses
        out = _parsed(value, data_type.simpleString(), datetime_options)
    return F.when(present, out).alias(name)


def unparsed(name: str, data_type: T.DataType, spellings: Spellings, options: dict[str, str]) -> Column:
    """Whether a row's value is present but did not parse as `data_type`."""
    value = _col(name)
    if isinstance(data_type, T.StringType):
        return F.lit(False)
    present = value.isNotNull() & ~_isin(value, spellings.blank)
    return present & typed(name, data_type, spellings, options).isNull()
