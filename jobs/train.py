"""spark-submit entry point: Horovod-on-Spark Estimator training, evaluation and export.

The model follows the dataset's kind: a CNN for images, a wide-and-deep model for tables.

spark-submit jobs/train.py --data DATASET --model-dir DIR [--num-proc N] [--max-steps S | --epochs E]
    [--version N] [--warm-start-from DIR]
python jobs/train.py --data DATASET --model-dir DIR       # starts local[*] Spark

A model dir that holds a checkpoint continues from it on the version read, if that builds the same graph.
"""

from __future__ import annotations

import argparse
import sys

from jobs.errors import reporting_errors
from jobs.spark_cli import add_spark_arguments, spark_session
from jobs.versions import add_version_argument
from training.config import DEFAULT_STREAM_WINDOW, StreamOptions, TrainConfig, load_params
from training.run import run_training


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="train", description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--data", required=True, help="dataset folder written by a conversion job")
    add_version_argument(parser)
    parser.add_argument(
        "--model-dir", required=True, help="checkpoints, summaries, metrics.json and export/ (any tf.io.gfile path)"
    )
    parser.add_argument("--num-proc", type=int, help="Horovod processes (default: the cores Spark can give)")
    steps = parser.add_mutually_exclusive_group()
    steps.add_argument("--max-steps", type=int, help="global step to stop at (as in Estimator.train)")
    steps.add_argument(
        "--epochs",
        type=float,
        help="passes over the training split of the version read (default 1); in a model dir that holds a "
        "checkpoint, on top of its global step",
    )
    parser.add_argument(
        "--warm-start-from",
        metavar="DIR",
        help="start a new model (fresh --model-dir) from the variables of an earlier model dir or export whose "
        "names and shapes still fit (the output layer starts fresh when the labels differ)",
    )
    parser.add_argument("--batch-size", type=int, default=32, help="examples per process per step")
    parser.add_argument("--learning-rate", type=float, help="per-process learning rate (scaled by --num-proc)")
    parser.add_argument("--params-file", help="JSON file of hyper-parameters (see training/config.py)")
    parser.add_argument("--train-split", default="train", help="split to train on")
    parser.add_argument("--eval-split", help="split to evaluate on (default: validation, else test)")
    parser.add_argument("--labels", help="comma-separated label subset to train and evaluate on (filter hook; images)")
    parser.add_argument(
        "--feature-spec", help="tables: JSON/YAML file of how each column is used (see training/table_features.py)"
    )
    parser.add_argument("--checkpoint-steps", type=int, default=100, help="steps between checkpoints")
    parser.add_argument("--summary-steps", type=int, default=20, help="steps between TensorBoard summaries")
    parser.add_argument("--seed", type=int, default=0, help="seed of shuffling and initialization")
    parser.add_argument("--no-export", action="store_true", help="skip the SavedModel export")
    parser.add_argument(
        "--skip-undecodable",
        action="store_true",
        help="images: skip the records whose image does not decode (found by decoding every record of the "
        "train and eval splits first) and count them in metrics.json, instead of failing",
    )
    fetch = parser.add_mutually_exclusive_group()
    fetch.add_argument(
        "--stream-window",
        type=int,
        metavar="N",
        default=DEFAULT_STREAM_WINDOW,
        help="data on an object store: each rank fetches its shards while it trains, at most N on its local disk at "
        "once (disk per node: N x the largest shard x ranks per node)",
    )
    fetch.add_argument(
        "--copy-first",
        action="store_true",
        help="data on an object store: each rank copies its whole share of the shards to local disk before training",
    )
    parser.add_argument(
        "--deterministic",
        action="store_true",
        help="the same records in the same order on every run with the same --seed (tf.data waits for slow files)",
    )
    add_spark_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def run() -> int:
        config = TrainConfig(
            data=args.data,
            data_version=args.data_version,
            model_dir=args.model_dir,
            params=load_params(args.params_file, {"learning_rate": args.learning_rate}),
            train_split=args.train_split,
            eval_split=args.eval_split,
            batch_size=args.batch_size,
            max_steps=args.max_steps,
            epochs=args.epochs,
            seed=args.seed,
            keep_labels=tuple(x.strip() for x in args.labels.split(",")) if args.labels else None,
            feature_spec=args.feature_spec,
            checkpoint_steps=args.checkpoint_steps,
            summary_steps=args.summary_steps,
            export=not args.no_export,
            skip_undecodable=args.skip_undecodable,
            warm_start_from=args.warm_start_from,
            stream=StreamOptions(copy_first=args.copy_first, window=args.stream_window),
            deterministic=args.deterministic,
        )
        print(run_training(spark_session(args, "train"), config, args.num_proc).text())
        return 0

    return reporting_errors(run)


if __name__ == "__main__":
    sys.exit(main())
