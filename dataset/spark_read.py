"""A dataset folder as a Spark DataFrame, through the spark-tfrecord data source.

The schema is the manifest's (`Manifest.spark_schema()`), never inferred: inference turns binary
into string and one-element lists into scalars. The shards read are those the manifest names
with records in them; gzip shards (`.gz`) are decompressed by the reader from their suffix.
Float features come back as 32-bit floats, as they were written; dates and timestamps as Spark
dates and timestamps (`Manifest.spark_schema(logical=True)`); a value a record left out (a null
in the source) as null. The session needs the `format("tfrecord")` data source (`jobs.tfrecord_jar`).
"""

from __future__ import annotations

from typing import Any

from dataset import temporal
from dataset.errors import DatasetError
from dataset.manifest import Manifest, shard_urls
from dataset.versions import read_manifest

TFRECORD_FORMAT = "tfrecord"
SPLIT_COLUMN = "split"


def _read_shards(spark: Any, urls: list[str], manifest: Manifest) -> Any:
    schema = manifest.spark_schema()
    if not urls:  # a split without records
        return spark.createDataFrame([], manifest.spark_schema(logical=True))
    records = spark.read.format(TFRECORD_FORMAT).option("recordType", "Example").schema(schema).load(urls)
    return _restored(records, manifest)


def _restored(records: Any, manifest: Manifest) -> Any:
    """Dates and timestamps back from their numbers (`dataset.temporal`); a feature a record left out is null."""
    logical = {name: f.logical_type for name, f in manifest.features.items() if f.logical_type}
    if not logical:
        return records
    return records.select(
        *[
            temporal.from_number(name, logical[name]).alias(name) if name in logical else records[f"`{name}`"]
            for name in records.columns
        ]
    )


def read_split(spark: Any, data_url: str, split: str | None = None, version: int | None = None) -> Any:
    """The records of one split, or of every split with a `split` column, as a DataFrame.

    Columns are the manifest's features (sorted by name), with their manifest Spark types.

    Raises:
        DatasetError: the folder is not a finished dataset, the split does not exist, or (every
            split) a feature is already called `split`.
    """
    manifest = read_manifest(data_url, version)
    if split is not None:
        return _read_shards(spark, shard_urls(data_url, manifest, split, non_empty=True), manifest)
    if SPLIT_COLUMN in manifest.features:
        raise DatasetError(f"{data_url} has a feature called {SPLIT_COLUMN!r}; read one split at a time")
    if not manifest.splits:
        raise DatasetError(f"{data_url} has no splits")
    from pyspark.sql import functions as F

    frames = [
        _read_shards(spark, shard_urls(data_url, manifest, name, non_empty=True), manifest).withColumn(
            SPLIT_COLUMN, F.lit(name)
        )
        for name in sorted(manifest.splits)
    ]
    frame = frames[0]
    for other in frames[1:]:
        frame = frame.unionByName(other)
    return frame
