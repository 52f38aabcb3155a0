"""`make demo`: scikit-learn's 1,797 digits through the whole pipeline, with an HTML report.

python -m jobs.demo --workdir demo_output
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from demo.pipeline import run_demo
from jobs.errors import reporting_errors
from jobs.spark_cli import add_spark_arguments, spark_session


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="demo", description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="demo_output", help="where the images, dataset, model and report go")
    parser.add_argument("--num-proc", type=int, default=2, help="Horovod processes")
    parser.add_argument("--epochs", type=float, default=25, help="passes over the training split")
    add_spark_arguments(parser)
    args = parser.parse_args(argv)
    start = time.perf_counter()

    def run() -> int:
        result = run_demo(spark_session(args, "demo"), Path(args.workdir).resolve(), args.num_proc, args.epochs)
        print(
            f"test accuracy {result.accuracy:.4f} on {result.num_predictions} images (target 0.95) "
            f"in {time.perf_counter() - start:.0f} s"
        )
        return 0

    return reporting_errors(run)


if __name__ == "__main__":
    sys.exit(main())
