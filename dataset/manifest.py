"""`manifest.json`: the one contract between conversion, training, inference and Spark readers.

One typed object names the shards of every split with their record counts, the labels, and
each feature with its dtype, from which it renders both readers' schemas: the `tf.io` parse
spec (`tf_feature_spec`) and the Spark schema (`spark_schema`). Tables add their label, key,
task and per-column statistics (`TableInfo`). A feature says how a date or timestamp became a
number (`logical_type`, `unit`, `timezone`) and in how many records it is missing (`null_count`,
left out of the record) with the value readers supply there (`default`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from dataset.errors import DatasetError
from dataset.features import IMAGE_FEATURES, IMAGE_FILENAME, IMAGE_LABEL_TEXT
from dataset.layout import DatasetFolder

FORMAT_VERSION = 3  # 3: dates and timestamps (logical types), missing values left out of records (null counts)
READABLE_VERSIONS = (2, 3)  # 2: typed table section, record Spark types, label and key features named; no nulls
KINDS = ("images", "table")


@dataclass(frozen=True)
class Feature:
    """One feature of every record."""

    dtype: str  # "string" | "int64" | "float32"
    shape: tuple[int, ...] = ()
    length: str = "fixed"  # "fixed": one value per record; "var": a list
    spark_type: str = ""  # the record column's Spark type, e.g. "bigint", "binary", "array<float>"
    logical_type: str | None = None  # "date" | "timestamp" | "timestamp_ntz": an int64 in `unit` (dataset.temporal)
    unit: str | None = None  # "days" | "microseconds"
    timezone: str | None = None  # "UTC" for timestamps (instants); None for dates and wall-clock timestamps
    null_count: int = 0  # records that leave the feature out (a missing value in the source)
    default: int | float | str | None = None  # what readers supply where it is left out (scalars with nulls)

    def tf_spec(self, tf_dtype: Any) -> Any:
        """This feature's `tf.io` parse spec: a scalar left out of some records gets its `default`."""
        import tensorflow as tf

        if self.length != "fixed":
            return tf.io.VarLenFeature(tf_dtype)  # a list left out reads as an empty list
        if self.null_count:
            return tf.io.FixedLenFeature(list(self.shape), tf_dtype, default_value=self.default)
        return tf.io.FixedLenFeature(list(self.shape), tf_dtype)  # a record without it is an error


def spark_schema_of(features: dict[str, Feature], logical: bool = False) -> Any:
    """The Spark `StructType` of records with `features`: one column per feature, sorted by name.

    Writers use it before the manifest exists (`Manifest.spark_schema` is the same for readers).
    With `logical`, a date or timestamp feature has its Spark type instead of the record's bigint.
    """
    from pyspark.sql import types as T

    scalar = {
        "bigint": T.LongType(),
        "float": T.FloatType(),
        "string": T.StringType(),
        "binary": T.BinaryType(),
        "date": T.DateType(),
        "timestamp": T.TimestampType(),
        "timestamp_ntz": T.TimestampNTZType(),
    }

    def spark(name: str) -> T.DataType:
        text = features[name].spark_type
        if logical and features[name].logical_type:
            text = features[name].logical_type
        if text.startswith("array<") and text.endswith(">"):
            return T.ArrayType(scalar[text[6:-1]])
        return scalar[text]

    return T.StructType([T.StructField(name, spark(name)) for name in sorted(features)])


@dataclass(frozen=True)
class ShardFile:
    path: str  # relative to the dataset folder
    num_records: int
    bytes: int
    index: str | None = None  # its record index (`dataset.record_index`), relative to the dataset folder; None: none

    def under(self, folder: str) -> "ShardFile":
        """This shard (and its index) with paths prefixed by `folder` (a run folder)."""
        index = f"{folder}/{self.index}" if self.index else None
        return ShardFile(f"{folder}/{self.path}", self.num_records, self.bytes, index)


@dataclass(frozen=True)
class SplitInfo:
    num_records: int
    files: tuple[ShardFile, ...]
    label_counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ColumnStats:
    """Statistics of one table column over the statistics split (numbers or strings)."""

    null_count: int | None = None
    count: int | None = None  # numbers: finite values
    mean: float | None = None
    stddev: float | None = None
    min: float | None = None
    max: float | None = None
    nan_count: int | None = None
    inf_count: int | None = None
    boundaries: tuple[float, ...] = ()  # numbers: quantile boundaries
    num_distinct: int | None = None  # strings
    vocabulary: tuple[tuple[str, int], ...] = ()  # strings: most frequent values with counts

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ColumnStats":
        values = dict(data)
        values["boundaries"] = tuple(values.get("boundaries", ()))
        values["vocabulary"] = tuple((str(v), int(n)) for v, n in values.get("vocabulary", ()))
        return cls(**values)


@dataclass(frozen=True)
class TableColumn:
    """A source column: its Spark type in the source and its statistics."""

    source_type: str
    stats: ColumnStats = ColumnStats()


@dataclass(frozen=True)
class TableInfo:
    """What a table dataset adds: the label and key columns, the task, column statistics."""

    label: str
    key: str | None
    task: str  # "classification" | "regression"
    stats_split: str
    columns: dict[str, TableColumn]
    value_counts: str | None = None  # the statistics' full value counts (conversion.tables.sidecar), dataset-relative


@dataclass(frozen=True)
class Manifest:
    kind: str  # one of KINDS
    created_at: str
    source_root: str
    options: dict[str, Any]  # the conversion's option values, as given (a record, not a schema)
    labels: tuple[str, ...]  # index = label id; classification only
    features: dict[str, Feature]
    splits: dict[str, SplitInfo]
    compression: str
    num_files_seen: int
    num_rejected: dict[str, int]
    label_feature: str  # the feature that holds the label (its text for images)
    key_feature: str | None  # the feature that identifies a record, if any
    table: TableInfo | None = None
    num_converted_formats: dict[str, int] = field(default_factory=dict)  # images: original format → stored as PNG
    format_version: int = FORMAT_VERSION
    file_index: str | None = None  # the version's file index (`dataset.file_index`), relative to the dataset folder

    @property
    def num_records(self) -> int:
        return sum(split.num_records for split in self.splits.values())

    @property
    def num_rejected_total(self) -> int:
        return sum(self.num_rejected.values())

    def split(self, name: str) -> SplitInfo:
        """The split called `name`.

        Raises:
            DatasetError: the dataset has no such split.
        """
        if name not in self.splits:
            raise DatasetError(f"split {name!r} is not in the dataset; it has {', '.join(sorted(self.splits))}")
        return self.splits[name]

    def check(self) -> None:
        """Counts must reconcile: every input seen was written or rejected; split totals add up.

        Raises:
            DatasetError: they do not.
        """
        if self.num_files_seen != self.num_records + self.num_rejected_total:
            raise DatasetError(
                f"manifest counts do not reconcile: {self.num_files_seen} files seen != "
                f"{self.num_records} written + {self.num_rejected_total} rejected"
            )
        for name, split in self.splits.items():
            if split.num_records != sum(f.num_records for f in split.files):
                raise DatasetError(f"manifest split {name}: num_records differs from the sum over its files")

    def required_features(self) -> dict[str, str | None]:
        """The features every record of this kind holds and readers need: name → dtype (None: any)."""
        if self.kind == "images":
            return {name: dtype for name, (dtype, _) in IMAGE_FEATURES.items()}
        return {name: None for name in (self.label_feature, self.key_feature) if name}

    def tf_feature_spec(self, names: list[str] | None = None) -> dict[str, Any]:
        """The `tf.io.parse_example` spec of every feature, or of `names` (imports TensorFlow).

        Raises:
            DatasetError: the manifest does not list one of `names`.
        """
        import tensorflow as tf

        missing = sorted(set(names or ()) - set(self.features))
        if missing:
            raise DatasetError(
                f"the manifest lists no feature {', '.join(map(repr, missing))}; restore manifest.json or convert the data again"
            )
        dtypes = {"string": tf.string, "int64": tf.int64, "float32": tf.float32}
        chosen = self.features if names is None else {name: self.features[name] for name in names}
        return {name: info.tf_spec(dtypes[info.dtype]) for name, info in chosen.items()}

    def spark_schema(self, logical: bool = False) -> Any:
        """The records as a Spark `StructType` (feature names as columns, sorted), for Spark readers and writers.

        With `logical`, dates and timestamps are Spark's date and timestamp types (what `spark_read` gives).
        """
        return spark_schema_of(self.features, logical)

    def to_json(self) -> str:
        data = asdict(self)
        data["num_records"] = self.num_records
        data["checks"] = {
            "num_files_seen": self.num_files_seen,
            "written": self.num_records,
            "rejected": self.num_rejected_total,
            "reconciled": self.num_files_seen == self.num_records + self.num_rejected_total,
        }
        return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "Manifest":
        data = json.loads(text)
        if data.get("format_version") not in READABLE_VERSIONS:
            raise DatasetError(
                f"manifest format_version {data.get('format_version')} is not one of "
                f"{', '.join(map(str, READABLE_VERSIONS))}; convert the data again with this version"
            )
        table = data.get("table")
        return cls(
            kind=data["kind"],
            created_at=data["created_at"],
            source_root=data["source_root"],
            options=data["options"],
            labels=tuple(data["labels"]),
            features={k: Feature(**dict(v, shape=tuple(v["shape"]))) for k, v in data["features"].items()},
            splits={
                k: SplitInfo(
                    v["num_records"],
                    tuple(ShardFile(f["path"], f["num_records"], f["bytes"], f.get("index")) for f in v["files"]),
                    v["label_counts"],
                )
                for k, v in data["splits"].items()
            },
            compression=data["compression"],
            num_files_seen=data["num_files_seen"],
            num_rejected=data["num_rejected"],
            label_feature=data["label_feature"],
            key_feature=data["key_feature"],
            num_converted_formats=data.get("num_converted_formats", {}),
            file_index=data.get("file_index"),
            table=None
            if table is None
            else TableInfo(
                label=table["label"],
                key=table["key"],
                task=table["task"],
                stats_split=table["stats_split"],
                columns={
                    name: TableColumn(c["source_type"], ColumnStats.from_dict(c["stats"]))
                    for name, c in table["columns"].items()
                },
                value_counts=table.get("value_counts"),
            ),
        )


def image_features() -> dict[str, Feature]:
    """The features of every image record."""
    return {name: Feature(dtype, (), "fixed", spark_type) for name, (dtype, spark_type) in IMAGE_FEATURES.items()}


IMAGE_LABEL_FEATURE, IMAGE_KEY_FEATURE = IMAGE_LABEL_TEXT, IMAGE_FILENAME


def shard_urls(data_url: str, manifest: Manifest, split: str, non_empty: bool = False) -> list[str]:
    """URLs of a split's shards in manifest order (only those holding records, if `non_empty`).

    Raises:
        DatasetError: the split does not exist.
    """
    folder = DatasetFolder(data_url)
    return [folder.file_url(f.path) for f in manifest.split(split).files if f.num_records or not non_empty]
