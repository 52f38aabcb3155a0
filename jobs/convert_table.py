"""spark-submit entry point: a table (CSV, Parquet, JSON, ORC or a catalog table) → sharded TFRecords.

spark-submit jobs/convert_table.py --input data.csv --format csv --label target --output DIR
spark-submit jobs/convert_table.py --table main.sales.orders --label churned --key order_id --output DIR
spark-submit jobs/convert_table.py --input folder/ --format parquet --label target --output DIR --mode append
"""

from __future__ import annotations

import argparse
import sys

from conversion.options import parse_splits
from conversion.tables.convert import convert_table
from conversion.tables.options import FORMATS, NULL_POLICIES, QUANTILE_SAMPLE_ROWS, TableConvertOptions, key_values
from dataset.progress import interval_seconds
from jobs.errors import reporting_errors
from jobs.spark_cli import add_spark_arguments, spark_session


def add_read_option_argument(parser: argparse.ArgumentParser) -> None:
    """`--read-option KEY=VALUE`, for every job that reads a table source."""
    parser.add_argument(
        "--read-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a Spark DataFrameReader option (repeatable), e.g. sep=\\t, comment=#, encoding=latin1, "
        "escape=\\ (CSV defaults: header=true, quote and escape '\"' as RFC 4180)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="convert_table",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", help="file or folder of --format files (any Spark-readable URL)")
    source.add_argument("--table", help="catalog table name (Hive, Unity Catalog)")
    parser.add_argument("--format", choices=FORMATS, default="csv", help="input format (CSV needs a header)")
    parser.add_argument(
        "--schema",
        help="Spark DDL types, e.g. 'a INT, b STRING'; CSV: of some or all columns, the rest inferred by pandas' rules",
    )
    add_read_option_argument(parser)
    parser.add_argument(
        "--csv-null-value",
        default="",
        help="CSV: one more text that means missing (as --read-option nullValue=...); pandas' NA, N/A, null, "
        "None, nan... always do, except in a column --schema gives as STRING",
    )
    parser.add_argument(
        "--csv-mode",
        choices=["permissive", "dropmalformed", "failfast"],
        default="permissive",
        help="CSV rows that do not parse: rejected and counted against --max-reject-fraction; "
        "rejected and not counted; or stop the job naming the row",
    )
    parser.add_argument(
        "--csv-multiline",
        action="store_true",
        help="CSV: always read with multiLine (default: files Spark reads in one task anyway, and larger files "
        "where a line holds an open quote; --read-option multiLine=false turns it off)",
    )
    parser.add_argument("--output", required=True, help="dataset folder to create; appears only when complete")
    parser.add_argument("--label", required=True, help="the target column")
    parser.add_argument("--key", help="stable row id for split and shard hashing (default: a hash of the row)")
    parser.add_argument(
        "--task",
        choices=["auto", "classification", "regression"],
        default="auto",
        help="auto: strings, booleans and integers with few values are classification",
    )
    parser.add_argument(
        "--null-policy",
        choices=list(NULL_POLICIES),
        default="keep",
        help="keep: a null is left out of the record and readers supply the default (--null-default, else "
        "0, 0.0, '', []); fill: write the default into the record; reject: send rows with nulls to _rejected/",
    )
    parser.add_argument(
        "--null-default",
        action="append",
        default=[],
        metavar="COLUMN=VALUE",
        help="the value that stands for a null of one column (repeatable; dates and timestamps in ISO 8601)",
    )
    parser.add_argument("--max-vocab", type=int, default=100, help="most frequent values kept per string column")
    parser.add_argument("--num-quantiles", type=int, default=10, help="quantile buckets per numeric column")
    parser.add_argument(
        "--quantile-sample-rows",
        type=int,
        default=QUANTILE_SAMPLE_ROWS,
        help="quantiles from a deterministic 1-in-k sample of about this many rows of the statistics split",
    )
    parser.add_argument("--splits", default="train=0.8,validation=0.1,test=0.1", help="NAME=FRACTION list")
    parser.add_argument("--num-shards", type=int, help="shards per split (default: one per --target-shard-mb)")
    parser.add_argument(
        "--target-shard-mb", type=float, default=128.0, help="shard size when --num-shards is not given"
    )
    parser.add_argument("--compression", choices=["none", "gzip"], default="none", help="shard codec")
    parser.add_argument(
        "--mode",
        choices=["error", "overwrite", "append"],
        default="error",
        help="what to do when --output exists: refuse; convert in full as a new version; append: convert only the "
        "files of --input new since the current version (file sources; a catalog table converts in full)",
    )
    parser.add_argument(
        "--on-change",
        choices=["keep", "replace"],
        default="keep",
        help="--mode append: input files changed or deleted since the version are kept as converted (tables take "
        "keep only: their rows lie in every shard; --mode overwrite converts the folder as it is)",
    )
    parser.add_argument(
        "--max-reject-fraction", type=float, default=0.05, help="fail when more rows than this are rejected"
    )
    parser.add_argument(
        "--quiet", action="store_true", help="no progress lines (otherwise one every $PROGRESS_SECONDS, default 10)"
    )
    add_spark_arguments(parser)
    return parser


def options_from_args(args: argparse.Namespace) -> TableConvertOptions:
    return TableConvertOptions(
        output=args.output,
        label=args.label,
        input=args.input,
        format=args.format,
        table=args.table,
        schema=args.schema,
        csv_null_value=args.csv_null_value,
        csv_mode=args.csv_mode,
        csv_multiline=args.csv_multiline,
        read_options=key_values("--read-option", args.read_option),
        key=args.key,
        task=args.task,
        null_policy=args.null_policy,
        null_defaults=key_values("--null-default", args.null_default, "COLUMN=VALUE"),
        max_vocab=args.max_vocab,
        num_quantiles=args.num_quantiles,
        quantile_sample_rows=args.quantile_sample_rows,
        splits=parse_splits(args.splits),
        num_shards=args.num_shards,
        target_shard_mb=args.target_shard_mb,
        compression=args.compression,
        mode=args.mode,
        on_change=args.on_change,
        max_reject_fraction=args.max_reject_fraction,
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def run() -> int:
        options = options_from_args(args)
        every = interval_seconds(args.quiet)
        # tfrecord=True: the table writer is spark-tfrecord, the build for the Spark's Scala version (checked there)
        print(convert_table(spark_session(args, "convert_table", tfrecord=True), options, every).text())
        return 0

    return reporting_errors(run)


if __name__ == "__main__":
    sys.exit(main())
