"""Spark column types → `tf.train.Example` features: how each source column is written."""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql import types as T

from dataset import temporal
from dataset.errors import ConversionError
from dataset.features import SPARK_TYPES
from dataset.manifest import Feature

_INT = (T.ByteType, T.ShortType, T.IntegerType, T.LongType, T.BooleanType, T.DateType, T.TimestampType)
_FLOAT = (T.FloatType, T.DoubleType, T.DecimalType)
_BYTES = (T.StringType, T.BinaryType)


@dataclass(frozen=True)
class ColumnSpec:
    """One column as a feature: its tf dtype, scalar or list, and the Spark type it came from."""

    name: str
    dtype: str  # "int64" | "float32" | "string"
    is_list: bool
    spark_type: str  # in the source
    is_binary: bool = False
    logical_type: str | None = None  # dates and timestamps: stored as int64 (dataset.temporal)

    def feature(self, null_count: int = 0, default: int | float | str | None = None) -> Feature:
        """The column's entry in the manifest: its record type (binary stays binary for Spark readers),
        the logical type of a date or timestamp, and (scalars) in how many records it is left out
        with the value readers supply there."""
        element = "binary" if self.is_binary else SPARK_TYPES[self.dtype]
        logical = self.logical_type
        return Feature(
            self.dtype,
            (),
            "var" if self.is_list else "fixed",
            f"array<{element}>" if self.is_list else element,
            logical,
            temporal.UNITS.get(logical),
            temporal.TIMEZONES.get(logical),
            null_count,
            default if null_count and not self.is_list else None,
        )

    def value(self) -> Column:
        """The column as the record holds it: a date or timestamp as its number, any other as it is."""
        if self.logical_type:
            return temporal.to_number(self.name, self.logical_type)
        return F.col(f"`{self.name}`")


def _dtype(data_type: T.DataType) -> str | None:
    if isinstance(data_type, _INT) or data_type.simpleString() == temporal.TIMESTAMP_NTZ:
        return "int64"
    if isinstance(data_type, _FLOAT):
        return "float32"
    if isinstance(data_type, _BYTES):
        return "string"
    return None


# Names the conversion and training use for their own columns and features: a source column of
# one of these names would silently replace (or be replaced by) the pipeline's own.
RESERVED_NAMES = frozenset({"_h", "_split", "_reason", "_column", "_order", "_row", "_corrupt_record"})
RESERVED_PREFIXES = ("__", "_tfrecordpipe")


def check_names(names: list[str]) -> None:
    """Refuse source columns whose names the pipeline reserves.

    Raises:
        ConversionError: naming them.
    """
    reserved = [n for n in names if n in RESERVED_NAMES or n.startswith(RESERVED_PREFIXES)]
    if reserved:
        raise ConversionError(
            f"columns {reserved} use names the pipeline reserves for its own columns "
            f"({', '.join(sorted(RESERVED_NAMES))} and names starting with {' or '.join(RESERVED_PREFIXES)}); "
            "rename them in the source (e.g. select ... AS another_name) and convert again"
        )


def column_specs(schema: T.StructType) -> list[ColumnSpec]:
    """Map every column, in schema order.

    Dates and timestamps become int64 numbers (`dataset.temporal`).

    Raises:
        ConversionError: naming the first column whose type has no feature form (structs,
            maps, nested arrays, lists of dates or timestamps...), or columns with reserved names.
    """
    check_names([f.name for f in schema.fields])
    specs = []
    for column in schema.fields:
        data_type = column.dataType
        is_list = isinstance(data_type, T.ArrayType)
        element = data_type.elementType if is_list else data_type
        dtype = _dtype(element)
        logical = temporal.logical_type(element.simpleString())
        if dtype is None or (is_list and logical):
            raise ConversionError(
                f"column {column.name!r} has type {data_type.simpleString()}, which has no tf.train.Feature form; "
                "select or cast it (structs: select their fields, lists of dates: explode them or cast to strings)"
            )
        specs.append(
            ColumnSpec(
                column.name, dtype, is_list, data_type.simpleString(), isinstance(element, T.BinaryType), logical
            )
        )
    return specs
