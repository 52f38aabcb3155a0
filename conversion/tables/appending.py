"""`convert_table --mode append`: which input files are new since the current version, and whether they fit it.

A table version made from an `--input` folder keeps a file index (`dataset.file_index`: relative path, size,
stamp; `shard` null, a file's rows going to many shards) and its value counts (`conversion.tables.sidecar`,
with the rows read per file). An append lists the folder as Spark reads it (hidden `_`/`.` files left out),
converts the files the index does not hold into new shards, and commits version N+1 = N's shards + the new
ones with merged statistics (`conversion.tables.merge`).

Rules (one line each when broken):
- The options that decide the records (format, label, key, task, splits, null handling, reader options,
  --schema, vocabulary and quantile settings, compression) are the version's: a differing one is refused.
- The new files' columns are the version's: same names, same types by the same typing rules, widened as a
  full conversion of all the files would type them (CSV by pandas' rules, JSON by Spark's inference: int →
  bigint → double; a column with no value in the new files takes the version's type; a JSON field no new
  record has is null). Anything else names the column and `--mode overwrite`.
- Changed or deleted input files are kept as they were converted (`--on-change keep`, the only choice for
  tables: an append never rewrites existing shards, and a table file's rows are spread over every shard);
  the summary says how many. `--on-change replace` is refused, naming `--mode overwrite`.
- A catalog table (`--table`) has no files to compare: it converts in full (`--mode overwrite`).
"""

from __future__ import annotations

import json
import os
import posixpath
from dataclasses import asdict, dataclass
from urllib.parse import unquote, urlparse

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from conversion.tables.options import TableConvertOptions
from conversion.tables.sidecar import Sidecar, read_sidecar
from dataset.errors import ConversionError
from dataset.file_index import FileIndex, compare, read_index
from dataset.fs import filesystem, list_files
from dataset.listing import Listing, ListingBuilder
from dataset.table_reading import CORRUPT
from dataset.versions import Version

# Options that do not change a record or a statistic: free to differ between a version and its append.
FREE_OPTIONS = frozenset({"num_shards", "target_shard_mb", "mode", "max_reject_fraction", "on_change"})
# Options every file source takes (Spark's file index), applied to the listing as to the read.
LISTING_OPTIONS = ("pathglobfilter", "recursivefilelookup", "modifiedbefore", "modifiedafter")
_FLAGS = {"read_options": "--read-option", "null_defaults": "--null-default", "format": "--format"}
# CSV typing widens as a full conversion of all the files would type the column (pandas' order).
_WIDER = {"int": ("bigint", "double"), "bigint": ("double",)}
_EMPTY_TYPE = {"csv": "double", "json": "string"}  # the type a reader gives a column with no value at all
CATALOG_REFUSAL = (
    "--mode append compares the files of an --input folder with the version's file index; a catalog table "
    "(--table) has no such files: it converts in full, use --mode overwrite"
)


@dataclass(frozen=True)
class AppendPlan:
    """What an append converts and on top of what."""

    parent: Version
    index: FileIndex
    sidecar: Sidecar
    new: Listing  # the new files (relative to --input), with size and stamp
    urls: tuple[str, ...]  # the new files as Spark reads them
    kept_changed: int
    kept_deleted: int

    def kept_line(self) -> str | None:
        if not self.kept_changed and not self.kept_deleted:
            return None
        return (
            f"  kept as converted: {self.kept_changed} changed and {self.kept_deleted} deleted input files "
            "(appends never rewrite shards; --mode overwrite converts the folder as it is now)"
        )


def _normal(value: object) -> object:
    return json.loads(json.dumps(value))  # tuples as lists, as the manifest stores them


def check_options(parent: Version, options: TableConvertOptions) -> None:
    """Refuse an option that would make the appended records or statistics differ from the version's.

    Raises:
        ConversionError: naming the first option that differs.
    """
    recorded = parent.manifest.options
    for name, value in asdict(options).items():
        if name in FREE_OPTIONS or name in ("input", "output") or name not in recorded:
            continue
        if _normal(value) != recorded[name]:
            flag = _FLAGS.get(name, "--" + name.replace("_", "-"))
            raise ConversionError(
                f"{flag} is {_normal(value)!r} but version {parent.number} was converted with {recorded[name]!r}; "
                f"an append converts new files as the version's were: pass the same {flag}, or --mode overwrite"
            )


def spark_files(spark: SparkSession, options: TableConvertOptions) -> list[str]:
    """The files a conversion of `--input` reads, as Spark names them (its file index: hidden files left out)."""
    generic = {k: v for k, v in options.read_options if k.lower() in LISTING_OPTIONS}
    try:
        return sorted(spark.read.format("text").options(**generic).load(options.input).inputFiles())
    except Exception as err:  # AnalysisException: the path does not exist
        raise ConversionError(f"cannot list {options.input}: {str(err).splitlines()[0]}") from None


def _path(url: str) -> str:
    parsed = urlparse(url)
    if not parsed.scheme or len(parsed.scheme) == 1:
        return os.path.abspath(url)
    return unquote(parsed.path)


def relpath(root: str, url: str) -> str:
    """`url` (as Spark or fsspec names it) relative to the input root `root`."""
    return posixpath.relpath(_path(url), _path(root))


def input_listing(
    spark: SparkSession, options: TableConvertOptions, files: list[str] | None = None
) -> tuple[Listing, list[str]] | None:
    """The files of the `--input` folder that a conversion reads (Spark's listing: what the index must hold; `files`,
    the `inputFiles()` of the source as read, saves a listing), with size and stamp from one listing of the folder (-1
    and null where it lacks a file), and their URLs for Spark in the listing's order; None when `--input` is a single
    file (no index: no append)."""
    fs, root = filesystem(options.input)
    if not fs.isdir(root):
        return None
    urls = {relpath(options.input, url): url for url in (files if files is not None else spark_files(spark, options))}
    listed = list_files(options.input)
    stamps = listed.stamps.to_pylist() if listed.stamps is not None else [None] * len(listed)
    known = {path: (size, stamp) for path, size, stamp in zip(listed.relpaths.to_pylist(), listed.sizes, stamps)}
    builder = ListingBuilder()
    for path in urls:
        size, stamp = known.get(path, (-1, None))
        builder.add(path, int(size), stamp=stamp)
    picked = builder.build()
    return picked, [urls[p] for p in picked.relpaths.to_pylist()]


def plan_append(spark: SparkSession, options: TableConvertOptions, parent: Version) -> AppendPlan:
    """The new files under `--input` against `parent`'s file index.

    Raises:
        ConversionError: a catalog table, options that differ from the version's, --on-change replace, a single
            file as --input.
        DatasetError: the version has no file index or value counts (converted before appends existed).
    """
    if options.table:
        raise ConversionError(CATALOG_REFUSAL)
    if getattr(options, "on_change", "keep") == "replace":
        raise ConversionError(
            "--on-change replace is for images; a table file's rows lie in every shard, so replacing them rewrites "
            "the dataset: use --mode overwrite (a full conversion as a new version; a rollback undoes it)"
        )
    manifest = parent.manifest
    if manifest.kind != "table":
        raise ConversionError(
            f"{options.output} holds a dataset of {manifest.kind}, not a table; choose another --output"
        )
    check_options(parent, options)
    index = read_index(options.output, manifest)
    if index is None:
        raise ConversionError(
            f"version {parent.number} of {options.output} has no file index (converted before appends existed, or "
            "from a single file or a catalog table); convert it once with --mode overwrite, then append"
        )
    sidecar = read_sidecar(options.output, manifest)
    found = input_listing(spark, options)
    if found is None:
        raise ConversionError(f"--mode append needs --input to be a folder of files; {options.input} is a file")
    listing, urls = found
    diff = compare(listing, index)
    return AppendPlan(
        parent,
        index,
        sidecar,
        listing.take(diff.new),
        tuple(urls[i] for i in diff.new),
        len(diff.changed),
        len(diff.deleted),
    )


def fit_columns(source: DataFrame, parent: Version, fmt: str) -> DataFrame:
    """The new files' columns in the version's order and types, as a full conversion of all the files would read
    them: CSV and JSON widen an integer column to the version's double and give a column with no value in the new
    files the version's type; JSON (whose records may leave a field out) reads a column the new files lack as null.

    Raises:
        ConversionError: a column new, missing or of another type, naming it and what to do.
    """
    columns = parent.manifest.table.columns
    fields = {f.name: f.dataType for f in source.schema.fields}
    missing = [name for name in columns if name not in fields and fmt != "json"]
    extra = [name for name in fields if name not in columns and name != CORRUPT]
    advice = "convert all files with --mode overwrite (a new version), or keep the new files apart"
    if missing or extra:
        what = f"lack column {missing[0]!r}" if missing else f"have a new column {extra[0]!r}"
        raise ConversionError(f"the new files under {source_name(source)} {what} (version {parent.number}); {advice}")
    out = []
    for name, column in columns.items():
        if name not in fields:  # JSON: no new record has the field
            out.append(F.lit(None).cast(column.source_type).alias(name))
            continue
        found = fields[name].simpleString()
        value = F.col(f"`{name}`")
        if found != column.source_type:
            if not _widens(source, name, found, column.source_type, fmt):
                raise ConversionError(
                    f"column {name!r} is {found} in the new files but {column.source_type} in version "
                    f"{parent.number}; {advice}"
                )
            value = value.cast(column.source_type)
        out.append(value.alias(name))
    rest = [F.col(f"`{f}`") for f in fields if f not in columns]  # the reader's own (CSV: the corrupt record)
    return source.select(*out, *rest)


def _widens(source: DataFrame, name: str, found: str, wanted: str, fmt: str) -> bool:
    """Whether a full conversion of the version's files and the new ones would type the column `wanted`."""
    if fmt not in _EMPTY_TYPE:
        return False  # Parquet, ORC: the files carry their types
    if wanted in _WIDER.get(found, ()):
        return True
    # a column with no value in the new files (CSV: double, as pandas; JSON: string) takes the version's type
    return found == _EMPTY_TYPE[fmt] and source.where(F.col(f"`{name}`").isNotNull()).limit(1).count() == 0


def source_name(source: DataFrame) -> str:
    files = source.inputFiles()
    return posixpath.dirname(_path(files[0])) if files else "--input"
