"""Spark column types → `tf.train.Example` features: how each source column is written."""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import types as T

from dataset.errors import ConversionError
from dataset.features import SPARK_TYPES
from dataset.manifest import Feature

_INT = (T.ByteType, T.ShortType, T.IntegerType, T.LongType, T.BooleanType)
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

    def feature(self) -> Feature:
        """The column's entry in the manifest: its record type (binary stays binary for Spark readers)."""
        element = "binary" if self.is_binary else SPARK_TYPES[self.dtype]
        return Feature(
            self.dtype, (), "var" if self.is_list else "fixed", f"array<{element}>" if self.is_list else element
        )


def _dtype(data_type: T.DataType) -> str | None:
    if isinstance(data_type, _INT):
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

    Raises:
        ConversionError: naming the first column whose type has no feature form (structs,
            maps, nested arrays, dates, timestamps...), or columns with reserved names.
    """
    check_names([f.name for f in schema.fields])
    specs = []
    for column in schema.fields:
        data_type = column.dataType
        is_list = isinstance(data_type, T.ArrayType)
        element = data_type.elementType if is_list else data_type
        dtype = _dtype(element)
        if dtype is None:
            raise ConversionError(
                f"column {column.name!r} has type {data_type.simpleString()}, which has no tf.train.Feature form; "
                "select or cast it (structs: select their fields, dates: cast to string or a number)"
            )
        specs.append(
            ColumnSpec(column.name, dtype, is_list, data_type.simpleString(), isinstance(element, T.BinaryType))
        )
    return specs
