"""Reading a table source, the same for conversion and for serving: the user's reader options, and CSV as other
tools write it (RFC 4180 quotes, quoted newlines never cut, text that did not decode refused, column types by
pandas' rules)."""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote, urlparse

from pyspark.sql import Column, DataFrame, DataFrameReader, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from dataset import csv_types
from dataset.csv_types import Spellings
from dataset.errors import ConversionError
from dataset.fs import filesystem

CORRUPT = "_corrupt_record"  # CSV: the raw text of a row that does not parse (Spark's PERMISSIVE mode)
# RFC 4180, as R, pandas and Excel write: a quote inside a quoted value is doubled (Spark's default is a backslash).
CSV_DEFAULTS = {"header": "true", "quote": '"', "escape": '"'}
WIDE_ENCODINGS = re.compile(r"utf-?(16|32)", re.IGNORECASE)  # not ASCII-compatible: no line scan for quotes
DECODE_CHUNK = 1 << 20
# Spark 4 takes only these names for a reader's encoding (3.5 any Java charset, these too): Python's name → Spark's.
SPARK_CHARSETS = {
    "iso8859-1": "iso-8859-1", "ascii": "us-ascii", "utf-8": "utf-8", "utf-16": "utf-16", "utf-16-be": "utf-16be",
    "utf-16-le": "utf-16le", "utf-32": "utf-32",
}  # fmt: skip


@dataclass(frozen=True)
class Source:
    """The source as a DataFrame (CSV: typed columns plus `CORRUPT`) and what reading it decided."""

    frame: DataFrame
    notes: tuple[str, ...] = ()  # summary lines: multiLine chosen and why, spellings read as missing or non-finite


def option(read_options: tuple[tuple[str, str], ...], key: str) -> str | None:
    """The user's value for a reader option (Spark's keys are case-insensitive; the last one given wins)."""
    found = None
    for name, value in read_options:
        if name.lower() == key.lower():
            found = value
    return found


def _reader(spark: SparkSession, fmt: str, read_options: tuple[tuple[str, str], ...]) -> DataFrameReader:
    reader = spark.read.format(fmt)
    if fmt == "csv":
        reader = reader.options(**CSV_DEFAULTS)
    for key, value in read_options:
        reader = reader.option(key, _charset(spark, value) if key.lower() in ("encoding", "charset") else value)
    return reader


def _charset(spark: SparkSession, value: str) -> str:
    """An encoding by the name Spark 4 takes (latin1 → iso-8859-1); one Spark 4 does not read: a one-line refusal."""
    try:
        name = SPARK_CHARSETS.get(codecs.lookup(value).name)
    except LookupError:
        name = None
    legacy = spark.conf.get("spark.sql.legacy.javaCharsets", "false").lower() == "true"
    if name is None and int(spark.version.split(".")[0]) >= 4 and not legacy:
        raise ConversionError(
            f"--read-option encoding={value}: Spark {spark.version} reads only {', '.join(SPARK_CHARSETS.values())}; "
            "re-encode the file to UTF-8 (e.g. iconv) or set spark.sql.legacy.javaCharsets=true"
        )
    return name or value


def _first_line(err: Exception) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def read_table(
    spark: SparkSession,
    path: str,
    fmt: str,
    read_options: tuple[tuple[str, str], ...] = (),
    schema: str | None = None,
    multiline: bool = False,
    check_names: Callable[[list[str]], None] = lambda names: None,
) -> Source:
    """Files of `fmt` as a DataFrame; CSV through `read_csv`, other formats as Spark reads them.
    `check_names` sees the source's column names first (the conversion refuses names it reserves).

    Raises:
        ConversionError: unreadable input (one line), reserved column names, or a CSV that `read_csv` refuses.
    """
    if fmt == "csv":
        return read_csv(spark, path, read_options, schema, multiline, check_names)
    try:
        reader = _reader(spark, fmt, read_options)
        frame = (reader.schema(schema) if schema else reader).load(path)
    except Exception as err:  # AnalysisException: path missing, unreadable format
        raise ConversionError(f"cannot read {path} as {fmt}: {_first_line(err)}") from None
    check_names(frame.columns)
    return Source(frame)


def text_frame(
    spark: SparkSession, path: str, read_options: tuple[tuple[str, str], ...], names: list[str], multiline: bool
) -> DataFrame:
    """The CSV with every column as text, plus `CORRUPT` (PERMISSIVE mode)."""
    strings = T.StructType([T.StructField(n, T.StringType()) for n in names] + [T.StructField(CORRUPT, T.StringType())])
    reader = _reader(spark, "csv", read_options).option("multiLine", str(multiline).lower())
    return reader.option("mode", "PERMISSIVE").option("columnNameOfCorruptRecord", CORRUPT).schema(strings).load(path)


def read_csv(
    spark: SparkSession,
    path: str,
    read_options: tuple[tuple[str, str], ...] = (),
    schema: str | None = None,
    multiline: bool = False,
    check_names: Callable[[list[str]], None] = lambda names: None,
) -> Source:
    """A CSV source read as text and typed here: pandas' missing, non-finite, int64, float and bool rules,
    Spark's date and timestamp rules; `schema` (DDL, some or all columns) overrides a column's type.

    Quoted newlines: `multiline` (or `--read-option multiLine=...`) decides; otherwise files Spark reads
    in one task anyway are read with `multiLine`, larger ones only where a line scan finds an open quote.

    Raises:
        ConversionError: one line naming the file, the column and the option to pass, for text that did not
            decode, a column numeric but for a few values, a `schema` naming no column; unreadable input.
    """
    try:
        header = _reader(spark, "csv", read_options).option("multiLine", "false").load(path)
        names = header.columns
    except Exception as err:  # AnalysisException: path missing, unreadable format
        raise ConversionError(f"cannot read {path} as csv: {_first_line(err)}") from None
    check_names(names)
    if CORRUPT in names:
        raise ConversionError(f"{path} has a column named {CORRUPT}, which the CSV reader uses; rename it")
    if any("\ufffd" in n for n in names):
        raise _undecoded(path, "the header", next(n for n in names if "\ufffd" in n), read_options)
    given = _parse_schema(spark, schema)
    unknown = [f.name for f in given.fields if f.name not in names]
    if unknown:
        raise ConversionError(
            f"--schema names columns {unknown} that {path} does not have; columns are: {', '.join(names)}"
        )
    chosen, why = _multiline(spark, path, read_options, names, multiline)
    text = text_frame(spark, path, read_options, names, chosen)
    spellings = Spellings()  # a --read-option nullValue is one more: Spark reads it as null
    parsed = text.where(F.col(CORRUPT).isNull())
    profiles = {p.name: p for p in csv_types.profile(parsed, names, spellings, dict(read_options))}
    for name in names:
        if profiles[name].undecoded:
            _check_decoded(text, path, name, read_options)
    types = {f.name: f.dataType for f in given.fields}
    for name in names:
        if name not in types:
            types[name] = profiles[name].data_type()
            if isinstance(types[name], T.StringType) and profiles[name].almost_numeric():
                _refuse_almost_numeric(parsed, name, spellings)
    # A column --schema gives as STRING keeps every text as it is (only empty values are null).
    kept = {f.name: Spellings(("",)) for f in given.fields if isinstance(f.dataType, T.StringType)}
    columns = [_typed(n, types[n], kept.get(n, spellings), dict(read_options), n in given.fieldNames()) for n in names]
    failed = [csv_types.unparsed(n, types[n], spellings, dict(read_options)) for n in given.fieldNames()]
    corrupt = F.col(CORRUPT)
    if failed:  # a value that does not parse as the type --schema gives: the row is malformed, as Spark does
        as_text = F.to_json(F.struct(*[F.col(f"`{n}`") for n in names]))
        any_failed = failed[0]
        for more in failed[1:]:
            any_failed = any_failed | more
        corrupt = F.coalesce(corrupt, F.when(any_failed, as_text))
    frame = text.select(*columns, corrupt.alias(CORRUPT))
    return Source(frame, _notes(path, why, profiles, types, spellings))


def _typed(name: str, data_type: T.DataType, spellings: Spellings, options: dict[str, str], given: bool) -> Column:
    """A text column as its type. The profile read only the rows that parse, so only those take the cast that
    does not test values again; a malformed row (rejected later, its raw text kept) takes the tested one."""
    tested = csv_types.typed(name, data_type, spellings, options)
    if given or isinstance(data_type, T.StringType):
        return tested.alias(name)
    fast = csv_types.typed(name, data_type, spellings, options, checked=True)
    return F.when(F.col(CORRUPT).isNull(), fast).otherwise(tested).alias(name)


def _parse_schema(spark: SparkSession, schema: str | None) -> T.StructType:
    if not schema:
        return T.StructType([])
    try:
        return spark.createDataFrame([], schema).schema  # Spark's DDL parser (StructType.fromDDL is Spark 4 only)
    except Exception as err:  # ParseException
        raise ConversionError(
            f"--schema {schema!r} is not Spark DDL such as 'a INT, b STRING': {_first_line(err)}"
        ) from None


def _notes(
    path: str,
    why: str,
    profiles: dict[str, csv_types.ColumnProfile],
    types: dict[str, T.DataType],
    spellings: Spellings,
) -> tuple[str, ...]:
    missing, non_finite = [], []
    for name, p in profiles.items():
        gone, infinite = p.read_as(types[name], spellings)
        if gone:
            missing.append(f"{name} {gone}")
        if infinite:
            non_finite.append(f"{name} {infinite}")
    notes = [f"  read {path}: {why}"] if why else []
    if missing:
        notes.append(f"  read as missing (NA, N/A, null, None, nan... as pandas): {', '.join(missing)}")
    if non_finite:
        notes.append(f"  read as non-finite (inf, -inf, Infinity, NaN...): {', '.join(non_finite)}")
    return tuple(notes)


def _multiline(
    spark: SparkSession, path: str, read_options: tuple[tuple[str, str], ...], names: list[str], forced: bool
) -> tuple[bool, str]:
    """Whether to read with `multiLine` (quoted values may hold newlines), and why (for the summary)."""
    given = option(read_options, "multiLine")
    if given is not None:
        return given.strip().lower() == "true", ""
    if forced:
        return True, "multiLine (--csv-multiline)"
    quote = option(read_options, "quote")
    if quote is None:
        quote = CSV_DEFAULTS["quote"]
    if quote in ("", "\u0000"):
        return False, ""  # no quoting: a newline always ends a row
    encoding = option(read_options, "encoding") or option(read_options, "charset") or "UTF-8"
    if WIDE_ENCODINGS.search(encoding):
        return True, f"multiLine (a {encoding} file is not scanned line by line)"
    lines = text_frame(spark, path, read_options, names, False)
    files = lines.inputFiles()
    if lines.rdd.getNumPartitions() <= len(files):
        return True, "multiLine (every file is read in one task either way)"
    escape = option(read_options, "escape")
    escape = CSV_DEFAULTS["escape"] if escape is None else escape
    comment = option(read_options, "comment")
    open_quote = file_with_open_quote(spark, files, quote, escape, comment)
    if open_quote is None:
        return False, ""
    return True, f"multiLine (a quoted value holds a newline in {open_quote}; large files are read in one task each)"


def file_with_open_quote(
    spark: SparkSession, files: list[str], quote: str, escape: str, comment: str | None
) -> str | None:
    """The first file with a line holding an odd number of quotes (a quoted value open at the line's end)."""
    line = F.col("value")
    if escape and escape != quote:
        line = F.regexp_replace(line, re.escape(escape) + "[\\s\\S]", "")  # an escaped character is no quote
    quotes = F.length(line) - F.length(F.regexp_replace(line, re.escape(quote), ""))
    odd = quotes % 2 == 1
    if comment:
        odd = odd & ~F.col("value").startswith(comment)
    found = spark.read.text(files).where(odd).select(F.input_file_name()).first()
    return None if found is None else _display(found[0])


def _display(url: str) -> str:
    """A file URL as Spark names it, shown as a path for local files."""
    parsed = urlparse(url)
    return unquote(parsed.path) if parsed.scheme == "file" else url


def _check_decoded(text: DataFrame, path: str, name: str, read_options: tuple[tuple[str, str], ...]) -> None:
    """Stop when a value holding U+FFFD comes from bytes the encoding does not decode (not from the character)."""
    value = F.col(f"`{name}`")
    row = text.where(value.contains("\ufffd")).select(F.input_file_name(), value).first()
    if row is None:
        return
    encoding = option(read_options, "encoding") or option(read_options, "charset") or "UTF-8"
    try:
        decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    except LookupError:
        decoder = None
    if decoder is not None:
        fs, file_path = filesystem(row[0])
        try:
            with fs.open(file_path, "rb") as stream:
                while chunk := stream.read(DECODE_CHUNK):
                    decoder.decode(chunk)
                decoder.decode(b"", final=True)
            return  # every byte decodes: the U+FFFD is in the file itself
        except UnicodeDecodeError:
            pass
    raise _undecoded(_display(row[0]), f"column {name!r}", row[1], read_options)


def _undecoded(file: str, where: str, example: str, read_options: tuple[tuple[str, str], ...]) -> ConversionError:
    encoding = option(read_options, "encoding") or option(read_options, "charset") or "UTF-8"
    return ConversionError(
        f"{file} is not {encoding}: {where} holds bytes that do not decode (e.g. {example[:60]!r}); "
        "pass the file's encoding, e.g. --read-option encoding=latin1 (or cp1252)"
    )


def _refuse_almost_numeric(parsed: DataFrame, name: str, spellings: Spellings) -> None:
    values = csv_types.offending_values(parsed, name, spellings)
    if len(values) > csv_types.FEW_VALUES:
        return  # many different texts: a text column that holds numbers too
    shown = ", ".join(repr(v) for v in values)
    raise ConversionError(
        f"column {name!r} holds numbers but for {shown}; if those mean missing, pass --read-option nullValue="
        f"{values[0]} (one spelling) or clean them; to keep the column as text, pass --schema '{name} STRING'"
    )
