"""`manifest.json`: the one contract between conversion and training.

It names the shards of every split with their record counts, the labels, and each feature
with its `tf` dtype and shape (the parse spec for reading) and Spark type (for writing).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from conversion.errors import DatasetError
from conversion.listing import filesystem
from conversion.staging import MANIFEST, SUCCESS

FORMAT_VERSION = 1


@dataclass(frozen=True)
class FeatureInfo:
    dtype: str  # "string" | "int64" | "float32"
    shape: tuple[int, ...] = ()
    length: str = "fixed"  # "fixed" or "var"
    spark_type: str = ""


@dataclass(frozen=True)
class ShardFile:
    path: str  # relative to the dataset folder
    num_records: int
    bytes: int


@dataclass(frozen=True)
class SplitInfo:
    num_records: int
    files: tuple[ShardFile, ...]
    label_counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Manifest:
    kind: str
    created_at: str
    source_root: str
    options: dict[str, Any]
    labels: tuple[str, ...]
    features: dict[str, FeatureInfo]
    splits: dict[str, SplitInfo]
    compression: str
    num_files_seen: int
    num_rejected: dict[str, int]
    format_version: int = FORMAT_VERSION
    table: dict[str, Any] = field(default_factory=dict)  # tables only: label, task, per-column statistics

    @property
    def num_records(self) -> int:
        return sum(split.num_records for split in self.splits.values())

    @property
    def num_rejected_total(self) -> int:
        return sum(self.num_rejected.values())

    def check(self) -> None:
        """Counts must reconcile: every file seen was written or rejected; split totals add up.

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
        if data.get("format_version") != FORMAT_VERSION:
            raise DatasetError(
                f"manifest format_version {data.get('format_version')} is not {FORMAT_VERSION}; "
                "convert the data again with this version"
            )
        return cls(
            kind=data["kind"],
            created_at=data["created_at"],
            source_root=data["source_root"],
            options=data["options"],
            labels=tuple(data["labels"]),
            features={
                k: FeatureInfo(v["dtype"], tuple(v["shape"]), v["length"], v["spark_type"])
                for k, v in data["features"].items()
            },
            splits={
                k: SplitInfo(v["num_records"], tuple(ShardFile(**f) for f in v["files"]), v["label_counts"])
                for k, v in data["splits"].items()
            },
            compression=data["compression"],
            num_files_seen=data["num_files_seen"],
            num_rejected=data["num_rejected"],
            table=data.get("table", {}),
        )

    def tf_feature_spec(self) -> dict[str, Any]:
        """The `tf.io.parse_example` spec for every feature (imports TensorFlow)."""
        import tensorflow as tf

        dtypes = {"string": tf.string, "int64": tf.int64, "float32": tf.float32}
        return {
            name: tf.io.FixedLenFeature(list(info.shape), dtypes[info.dtype])
            if info.length == "fixed"
            else tf.io.VarLenFeature(dtypes[info.dtype])
            for name, info in self.features.items()
        }


def read_manifest(data_url: str) -> Manifest:
    """Load the manifest of a committed dataset folder.

    Raises:
        DatasetError: the folder is missing, not committed (no `_SUCCESS`) or its manifest is unreadable.
    """
    fs, path = filesystem(data_url)
    if not fs.isdir(path):
        raise DatasetError(f"dataset folder {data_url} does not exist; pass the --output of a conversion")
    if not fs.exists(f"{path}/{SUCCESS}") or not fs.exists(f"{path}/{MANIFEST}"):
        raise DatasetError(
            f"{data_url} has no {SUCCESS} or {MANIFEST}: it is not a finished conversion; run the conversion (again)"
        )
    try:
        manifest = Manifest.from_json(fs.cat_file(f"{path}/{MANIFEST}").decode("utf-8"))
    except (ValueError, KeyError, TypeError) as err:
        raise DatasetError(f"{data_url}/{MANIFEST} is not a valid manifest: {err!r}") from err
    manifest.check()
    return manifest
