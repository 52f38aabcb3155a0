"""Compact a dataset: each split's small shards concatenated into shards of about a target size, as a new version.

python jobs/compact.py --data DATASET                          # shards under 64 MB joined into shards of ~128 MB
python jobs/compact.py --data DATASET --target-shard-mb 256 --min-shard-mb 32 --split train
python jobs/compact.py --data DATASET --whole-splits          # one folder per split: TFDS reads the root again
python jobs/versions.py --data DATASET --vacuum --keep 1 --yes  # afterwards: delete the old small shards

Records are unchanged (same bytes, same order per split); no Spark is needed.
"""

from __future__ import annotations

import argparse
import sys

from conversion.compact import CompactOptions, compact
from jobs.errors import reporting_errors


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="compact", description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="dataset folder written by a conversion job")
    parser.add_argument(
        "--target-shard-mb", type=float, default=128.0, help="size a new shard grows to (stored MB; default 128)"
    )
    parser.add_argument(
        "--min-shard-mb",
        type=float,
        help="shards under this size are compacted, the others stay as they are (default: half the target)",
    )
    parser.add_argument(
        "--split", action="append", dest="splits", metavar="S", help="compact only split S (repeat for more)"
    )
    parser.add_argument(
        "--whole-splits",
        action="store_true",
        help="rewrite a split that spans several run folders (or has shards to compact) whole into the new run "
        "folder, so each split has one file template and TFDS's builder_from_directory reads the dataset",
    )
    parser.add_argument(
        "--version",
        dest="data_version",
        type=int,
        metavar="N",
        help="compact only if version N is still the current one (default: the current one)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def run() -> int:
        options = CompactOptions(
            target_shard_mb=args.target_shard_mb,
            min_shard_mb=args.min_shard_mb,
            splits=tuple(dict.fromkeys(args.splits or ())),
            version=args.data_version,
            whole_splits=args.whole_splits,
        )
        print(compact(args.data, options).text())
        return 0

    return reporting_errors(run)


if __name__ == "__main__":
    sys.exit(main())
