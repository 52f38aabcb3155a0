"""spark-submit entry point: a dataset folder's records → Parquet, through the tfrecord data source.

spark-submit jobs/export_parquet.py --data DATASET --output DIR              # every split
spark-submit jobs/export_parquet.py --data DATASET --split train --output DIR

Layout: with --split, DIR holds that split's records (one column per feature, the manifest's
Spark types). Without it, DIR is ONE Parquet table of every split with a `split` column,
partitioned by it (`DIR/split=train/...`): Spark and pandas read it back as one table with the
column, and `DIR/split=train` is that split alone. Feature names keep their `/`
(`image/encoded`); floats are the 32-bit values of the records. The session needs the
spark-tfrecord jar: SPARK_TFRECORD_JAR, else --packages from Maven (see jobs/tfrecord_jar.py).
"""

from __future__ import annotations

import argparse
import sys

from dataset.errors import OptionError
from dataset.fs import filesystem
from dataset.spark_read import SPLIT_COLUMN, read_split
from dataset.versions import read_manifest
from jobs.errors import reporting_errors
from jobs.spark_cli import add_spark_arguments, spark_session
from jobs.versions import add_version_argument


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="export_parquet",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--data", required=True, help="dataset folder written by a conversion job")
    add_version_argument(parser)
    parser.add_argument("--split", help="the split to export (default: every split, partitioned by split)")
    parser.add_argument("--output", required=True, help="Parquet folder to write")
    parser.add_argument(
        "--mode", choices=["error", "overwrite"], default="error", help="what to do when --output exists"
    )
    add_spark_arguments(parser)
    return parser


def export_parquet(
    spark, data_url: str, output: str, split: str | None = None, mode: str = "error", version: int | None = None
) -> int:
    """Write the records of `split` (or of every split, partitioned by split) to Parquet; the row count.

    Raises:
        DatasetError: `data_url` is not a finished dataset, or has no such split.
        OptionError: `output` exists and `mode` is "error".
    """
    frame = read_split(spark, data_url, split, version)
    writer = frame.write.mode(mode)
    if split is None:
        writer = writer.partitionBy(SPLIT_COLUMN)
    writer.parquet(output)
    manifest = read_manifest(data_url, version)
    return manifest.num_records if split is None else manifest.split(split).num_records


def _check_before_spark(args: argparse.Namespace) -> None:
    """Every mistake that needs no Spark, reported before the JVM starts."""
    manifest = read_manifest(args.data, args.data_version)
    if args.split is not None:
        manifest.split(args.split)
    fs, path = filesystem(args.output)
    if args.mode == "error" and fs.exists(path):
        raise OptionError(f"--output {args.output} already exists; pass --mode overwrite to replace it")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def run() -> int:
        _check_before_spark(args)
        spark = spark_session(args, "export_parquet", tfrecord=True)
        count = export_parquet(spark, args.data, args.output, args.split, args.mode, args.data_version)
        print(f"wrote {count} records of {args.split or 'every split'} to {args.output}")
        return 0

    return reporting_errors(run)


if __name__ == "__main__":
    sys.exit(main())
