"""spark-submit entry point: batch prediction with an exported SavedModel, written as Parquet.

spark-submit jobs/predict.py --model EXPORT_DIR --data DATASET --split test --output OUT
spark-submit jobs/predict.py --model EXPORT_DIR --images ROOT --output OUT
"""

from __future__ import annotations

import argparse
import functools
import sys

from conversion.tables.options import key_values
from dataset.errors import InferenceError
from dataset.export import load_lineage, resolve_export
from dataset.fs import filesystem
from dataset.progress import interval_seconds, job_group, tasks_line, ticking
from inference.predict import accuracy, predict_images, predict_split, predict_table_file
from jobs.convert_table import add_read_option_argument
from jobs.errors import reporting_errors
from jobs.spark_cli import add_spark_arguments, spark_session
from jobs.versions import add_version_argument


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="predict", description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="SavedModel export folder, or a model_dir (its newest export)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="dataset folder written by a conversion job")
    source.add_argument("--images", help="a folder of raw images (ROOT/<label>/... gives true labels)")
    source.add_argument("--table-file", help="a new CSV/Parquet/JSON/ORC file with the training table's columns")
    parser.add_argument(
        "--format", default="csv", choices=["csv", "parquet", "json", "orc"], help="--table-file format"
    )
    parser.add_argument("--csv-null-value", default="", help="--table-file CSV: one more text that means missing")
    add_read_option_argument(parser)
    parser.add_argument("--split", default="test", help="split of --data to predict")
    add_version_argument(parser)
    parser.add_argument("--output", required=True, help="Parquet folder to write")
    parser.add_argument("--mode", choices=["error", "overwrite"], default="error", help="when --output exists")
    parser.add_argument(
        "--quiet", action="store_true", help="no progress lines (otherwise one every $PROGRESS_SECONDS, default 10)"
    )
    add_spark_arguments(parser)
    return parser


def lineage_line(export: str) -> str:
    """What the model was trained on, from its export (`assets.extra/lineage.json`)."""
    seen = load_lineage(export)
    if not seen:
        return f"model {export}: trained on data of unknown version (exported before lineage was recorded)"
    return (
        f"model {export}: trained on {seen['data']} version {seen['version']} "
        f"(manifest sha256 {seen['manifest_sha256']})"
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def run() -> int:
        every = interval_seconds(args.quiet)
        export = resolve_export(args.model)
        fs, output = filesystem(args.output)
        existed = fs.exists(output)
        if existed and args.mode == "error":
            raise InferenceError(
                f"--output {args.output} already exists; pass --mode overwrite to replace it or choose another --output"
            )
        print(lineage_line(export))
        spark = spark_session(args, "predict")
        if args.data:
            predictions = predict_split(spark, export, args.data, args.split, args.data_version)
        elif args.images:
            predictions = predict_images(spark, export, args.images)
        else:
            read_options = key_values("--read-option", args.read_option)
            predictions = predict_table_file(
                spark, export, args.table_file, args.format, args.csv_null_value, read_options
            )
        try:
            with job_group(spark.sparkContext, "predict", f"predict {args.output}") as group:
                line = functools.partial(tasks_line, spark.sparkContext, group)
                with ticking(every, line):  # tasks done of total, from Spark's status tracker
                    predictions.write.mode(args.mode).parquet(args.output)
        except BaseException:
            if not existed and fs.exists(output):
                fs.rm(output, recursive=True)  # a half-written folder would make the rerun refuse
            raise
        written = spark.read.parquet(args.output)
        score = accuracy(written)
        failed = written.where("error IS NOT NULL").count()
        print(
            f"Wrote {written.count() - failed} predictions to {args.output}"
            + (f"; accuracy {score:.4f}" if score is not None else "")
            + (f"; {failed} inputs could not be predicted (their reason is in the error column)" if failed else "")
        )
        return 0

    return reporting_errors(run)


if __name__ == "__main__":
    sys.exit(main())
