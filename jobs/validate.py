"""Check a dataset folder with tf.data, or print decoded examples.

python jobs/validate.py --data DIR                     # CRCs, parsing, counts per shard
python jobs/validate.py --data DIR --inspect 5 --split train
"""

from __future__ import annotations

import argparse
import sys

from dataset.check import inspect_examples, validate_dataset
from jobs.errors import reporting_errors


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="validate", description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="dataset folder written by a conversion job")
    parser.add_argument("--inspect", type=int, metavar="N", help="print N decoded examples instead of validating")
    parser.add_argument("--split", default="train", help="split to inspect")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def run() -> int:
        if args.inspect:
            for row in inspect_examples(args.data, args.split, args.inspect):
                print(" ".join(f"{name}={value}" for name, value in row.items()))
        else:
            print(validate_dataset(args.data).text())
        return 0

    return reporting_errors(run)


if __name__ == "__main__":
    sys.exit(main())
