"""spark-submit entry point: image label folders → sharded TFRecords with a manifest.

spark-submit jobs/convert_images.py --input ROOT --output DIR [options]
python jobs/convert_images.py --input ROOT --output DIR   # starts local[*] Spark
"""

from __future__ import annotations

import argparse
import sys

from conversion.images.convert import convert_images
from conversion.images.options import ImageConvertOptions, ImageTransform, parse_size
from conversion.options import parse_splits
from dataset.progress import interval_seconds
from dataset.reads import DEFAULT_READ_CONCURRENCY
from jobs.errors import reporting_errors
from jobs.spark_cli import add_spark_arguments, spark_session


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="convert_images",
        description="Convert ROOT/<label>/**/<image> trees into sharded TFRecord splits with manifest.json.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--input", required=True, help="root folder (file, hdfs://, s3a://, gs://, abfs://, dbfs:/ ...)"
    )
    parser.add_argument("--output", required=True, help="dataset folder to create; appears only when complete")
    parser.add_argument(
        "--splits",
        default="train=0.8,validation=0.1,test=0.1",
        help="NAME=FRACTION list; a file's split is a stable hash of its relative path",
    )
    parser.add_argument(
        "--split-from-folders",
        action="store_true",
        help="take splits from ROOT/<split>/<label>/... folders instead of --splits",
    )
    parser.add_argument(
        "--labels", help="fixed comma-separated label list (index = label id); other folders are rejected"
    )
    parser.add_argument("--num-shards", type=int, help="shards per split (default: one per --target-shard-mb)")
    parser.add_argument(
        "--target-shard-mb", type=float, default=128.0, help="shard size when --num-shards is not given"
    )
    parser.add_argument(
        "--compression", choices=["none", "gzip"], default="none", help="shard codec (tf.data reads both)"
    )
    parser.add_argument(
        "--mode",
        choices=["error", "overwrite", "append"],
        default="error",
        help="what to do when --output exists: error; overwrite (a full conversion as a new version); append "
        "(convert only the files the current version has not seen, as a new version; a full conversion when "
        "--output does not exist)",
    )
    parser.add_argument(
        "--on-change",
        choices=["keep", "replace"],
        default="keep",
        help="--mode append: what to do with source files changed or deleted since the current version: keep their "
        "records as they are (no shard is rewritten), or replace (rewrite only the shards that hold them)",
    )
    parser.add_argument(
        "--retry-rejected",
        action="store_true",
        help="--mode append: convert again the files an earlier version rejected",
    )
    parser.add_argument(
        "--list-prefix",
        metavar="PREFIX",
        help="--mode append: list only this folder under --input, relative to it (e.g. cats/2026-12-06; a * segment "
        "stands for every folder at that level: */2026-12-06); paths stay relative to --input, so splits do not move",
    )
    parser.add_argument(
        "--verify",
        choices=["header", "decode", "full"],
        default="decode",
        help="header: Pillow header plus end-of-file check (cheapest; lets through damage inside a file, "
        "which stops training); decode: decode every image (JPEGs at 1/8 scale); full: JPEGs at full scale too",
    )
    parser.add_argument("--max-bytes", type=int, default=64 * 1024 * 1024, help="reject files larger than this")
    parser.add_argument("--resize", help="resize every image to HxW, e.g. 224x224")
    parser.add_argument("--reencode", choices=["jpeg", "png"], help="re-encode every image in this format")
    parser.add_argument("--jpeg-quality", type=int, default=95, help="JPEG quality for re-encoding")
    parser.add_argument(
        "--keep-orientation",
        action="store_true",
        help="keep each file's pixels as stored and its EXIF orientation (1-8) in the image/orientation feature "
        "(default: turn the pixels upright as a viewer shows them; a turned JPEG is re-encoded)",
    )
    parser.add_argument(
        "--max-reject-fraction",
        type=float,
        default=0.05,
        help="fail (after writing the report) when more images than this are rejected",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the record order within shards")
    parser.add_argument(
        "--quiet", action="store_true", help="no progress lines (otherwise one every $PROGRESS_SECONDS, default 10)"
    )
    parser.add_argument(
        "--read-concurrency",
        type=int,
        default=DEFAULT_READ_CONCURRENCY,
        help="image reads in flight per task on object stores (memory: this many images per task)",
    )
    add_spark_arguments(parser)
    return parser


def options_from_args(args: argparse.Namespace) -> ImageConvertOptions:
    transform = ImageTransform(
        verify=args.verify,
        max_bytes=args.max_bytes,
        resize=parse_size(args.resize) if args.resize else None,
        reencode=args.reencode,
        jpeg_quality=args.jpeg_quality,
        keep_orientation=args.keep_orientation,
    )
    return ImageConvertOptions(
        input=args.input,
        output=args.output,
        splits=parse_splits(args.splits),
        split_from_folders=args.split_from_folders,
        labels=tuple(label.strip() for label in args.labels.split(",")) if args.labels else None,
        num_shards=args.num_shards,
        target_shard_mb=args.target_shard_mb,
        compression=args.compression,
        mode=args.mode,
        transform=transform,
        max_reject_fraction=args.max_reject_fraction,
        seed=args.seed,
        read_concurrency=args.read_concurrency,
        on_change=args.on_change,
        retry_rejected=args.retry_rejected,
        list_prefix=args.list_prefix,
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def run() -> int:
        options = options_from_args(args)
        every = interval_seconds(args.quiet)
        print(convert_images(spark_session(args, "convert_images"), options, every).text())
        return 0

    return reporting_errors(run)


if __name__ == "__main__":
    sys.exit(main())
