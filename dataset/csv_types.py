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


INTEGER_RANGES = {"tinyint": 7, "smallint": 15, "int": 31, "bigint": 63}  # bits of each integer type
MAX_DIGITS = 38  # integers longer than this are floats (decimal(38,0) holds the rest exactly)


def _integer(trimmed: Column, sql_type: str = "bigint") -> Column:
    """An integer text as `sql_type`, null where it has no integer form or overflows. No exception is thrown
    (try_cast raises one inside per failing value: many times slower) and ANSI mode is fine."""
    bits = INTEGER_RANGES[sql_type]
    decimal = f"decimal({MAX_DIGITS},0)"
    surely = len(str(2**bits)) - 1  # this many characters (a sign included) always fit
    exact = trimmed.cast(decimal)
    fits = exact.between(F.lit(-(2**bits)).cast(decimal), F.lit(2**bits - 1).cast(decimal))
    return F.when(
        trimmed.rlike(INT_PATTERN),
        F.when(F.length(trimmed) <= surely, trimmed.cast(sql_type)).when(
            (F.length(trimmed) <= MAX_DIGITS) & fits, exact.cast(sql_type)
        ),
    )


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


# A text value's kind, from one CASE per value (each test runs only when the ones before it failed).
MISSING, INT32, INT64, FLOAT, BOOL, DATE, TIMESTAMP, TEXT = range(8)
SPELLED_MISSING, NAN, INF, UNDECODED = 1, 2, 4, 8  # flag bits


def _kind(name: str, spellings: Spellings, datetime_options: dict[str, str]) -> Column:
    value = _col(name)
    trimmed = F.trim(value)
    date_text = F.lit(True) if "dateformat" in datetime_options else value.rlike(ISO_DATE_PATTERN)
    timestamp_text = F.lit(True) if "timestampformat" in datetime_options else value.rlike(TIMESTAMP_PATTERN)
    return (
        F.when(value.isNull() | _isin(value, spellings.blank), MISSING)
        .when(
            trimmed.rlike(INT_PATTERN),
            F.when(_integer(trimmed, "int").isNotNull(), INT32)
            .when(_integer(trimmed, "bigint").isNotNull(), INT64)
            .otherwise(FLOAT),
        )
        .when(trimmed.rlike(FLOAT_PATTERN) | _isin(value, spellings.nan), FLOAT)
        .when(F.lower(trimmed).isin(*POSITIVE_INF, *NEGATIVE_INF), FLOAT)
        .when(value.isin(*TRUE_SPELLINGS, *FALSE_SPELLINGS), BOOL)
        .when(date_text & _parsed(value, "DATE", datetime_options).isNotNull(), DATE)
        .when(timestamp_text & _parsed(value, "TIMESTAMP", datetime_options).isNotNull(), TIMESTAMP)
        .otherwise(TEXT)
    )


def _flags(name: str, spellings: Spellings) -> Column:
    value = _col(name)
    return (
        F.when(_isin(value, [s for s in spellings.blank if s]), SPELLED_MISSING).otherwise(0)
        + F.when(_isin(value, spellings.nan), NAN).otherwise(0)
        + F.when(F.lower(F.trim(value)).isin(*POSITIVE_INF, *NEGATIVE_INF), INF).otherwise(0)
        + F.when(value.contains("\ufffd"), UNDECODED).otherwise(0)
    )


def _parsed(value: Column, sql_type: str, datetime_options: dict[str, str]) -> Column:
    """The text as Spark's CSV reader parses a `sql_type` field (its date and timestamp rules, the user's formats)."""
    quoted = F.concat(F.lit('"'), F.regexp_replace(value, '"', '""'), F.lit('"'))
    options = {"quote": '"', "escape": '"', "sep": ",", **datetime_options, "mode": "PERMISSIVE"}
    return F.from_csv(quoted, f"v {sql_type}", options).getField("v")


def profile(frame: DataFrame, names: list[str], spellings: Spellings, options: dict[str, str]) -> list[ColumnProfile]:
    """One pass over `frame` (text columns) counting, per column, the values of each kind.

    The columns are stacked into one (index, value) column first: one small expression per value compiles
    where thirty wide ones fall back to Spark's interpreter (measured: 5x slower on 30 columns).
    """
    if not names:
        return []
    datetime_options = {k.lower(): v for k, v in options.items() if k.lower() in DATETIME_OPTIONS}
    stacked = frame.select(F.posexplode(F.array(*[_col(n) for n in names])).alias("i", "v"))
    kinds = stacked.select("i", _kind("v", spellings, datetime_options).alias("k"), _flags("v", spellings).alias("f"))
    counts: dict[int, dict[str, int]] = {i: {} for i in range(len(names))}
    for row in kinds.groupBy("i", "k", "f").count().collect():
        per, kind, flags, n = counts[row["i"]], row["k"], row["f"], row["count"]
        for field, hit in (
            ("values", kind != MISSING),
            ("ints", kind in (INT32, INT64)),
            ("int32s", kind == INT32),
            ("floats", kind in (INT32, INT64, FLOAT)),
            ("bools", kind == BOOL),
            ("dates", kind == DATE),
            ("timestamps", kind in (DATE, TIMESTAMP)),
            ("spelled_missing", flags & SPELLED_MISSING),
            ("nans", flags & NAN),
            ("infs", flags & INF),
            ("undecoded", flags & UNDECODED),
        ):
            per[field] = per.get(field, 0) + (n if hit else 0)
    fields = (
        "values",
        "ints",
        "int32s",
        "floats",
        "bools",
        "dates",
        "timestamps",
        "spelled_missing",
        "nans",
        "infs",
        "undecoded",
    )
    return [ColumnProfile(name, *[counts[i].get(f, 0) for f in fields]) for i, name in enumerate(names)]


def offending_values(frame: DataFrame, name: str, spellings: Spellings, limit: int = FEW_VALUES + 1) -> list[str]:
    """Up to `limit` distinct values of a column that are neither missing nor a number, sorted."""
    text = frame.where(_kind(name, spellings, {}) >= BOOL)
    return sorted(r[0] for r in text.select(_col(name)).distinct().limit(limit).collect())


def typed(
    name: str, data_type: T.DataType, spellings: Spellings, options: dict[str, str], checked: bool = False
) -> Column:
    """The text column as `data_type`: missing spellings null, inf and NaN spellings non-finite floats,
    numbers trimmed as pandas does; dates and timestamps by Spark's CSV rules; null where a value does not
    parse (only possible with a type the user gave). `checked`: every value is known to parse (the profile
    chose the type), so numbers are cast without testing them again (a typed pass costs half as much)."""
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
        out = trimmed.cast(data_type) if checked else _integer(trimmed, data_type.simpleString())
    elif isinstance(data_type, (T.FloatType, T.DoubleType, T.DecimalType)):
        out = F.when(_isin(value, spellings.nan), F.lit(float("nan"))).otherwise(trimmed.cast("double"))
        if not checked:  # Spark's cast reads the inf spellings; the pattern keeps Java's other forms (1d, 0x1p3) out
            lowered = F.lower(trimmed)
            number = F.when(trimmed.rlike(FLOAT_PATTERN), trimmed.cast("double"))
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
