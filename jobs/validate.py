"""Check a dataset folder with tf.data, or print decoded examples.

python jobs/validate.py --data DIR                     # each shard read once: CRCs, index, features, counts; decode images
python jobs/validate.py --data DIR --decode-sample 1000  # decode about 1000 images per split (or --no-decode)
python jobs/validate.py --data DIR --inspect 5 --split train
"""

from __future__ import annotations

import argparse
import sys

from dataset.check import inspect_examples, validate_dataset
from dataset.errors import OptionError
from jobs.errors import reporting_errors
from jobs.versions import add_version_argument


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="validate", description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="dataset folder written by a conversion job")
    add_version_argument(parser)
    parser.add_argument("--inspect", type=int, metavar="N", help="print N decoded examples instead of validating")
    parser.add_argument("--split", default="train", help="split to inspect")
    decoding = parser.add_mutually_exclusive_group()
    decoding.add_argument(
        "--decode-sample",
        type=int,
        metavar="N",
        help="decode about N images per split with training's decoder (default: every image)",
    )
    decoding.add_argument("--no-decode", action="store_true", help="do not decode images")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def run() -> int:
        if args.inspect:
            for row in inspect_examples(args.data, args.split, args.inspect, args.data_version):
                print(" ".join(f"{name}={value}" for name, value in row.items()))
        else:
            if args.decode_sample is not None and args.decode_sample < 1:
                raise OptionError(f"--decode-sample must be at least 1, got {args.decode_sample} (or pass --no-decode)")
            decode = 0 if args.no_decode else args.decode_sample
            print(validate_dataset(args.data, decode, args.data_version).text())
        return 0

    return reporting_errors(run)


if __name__ == "__main__":
    sys.exit(main())
