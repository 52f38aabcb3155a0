"""Training configuration: the run's options (frozen), and the hyper-parameter overrides."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dataset.errors import DatasetError, TrainingError


def load_params(path: str | None, overrides: dict[str, Any]) -> dict[str, Any]:
    """Hyper-parameter overrides: a JSON file's, then command-line values (None: not given).

    Raises:
        TrainingError: the file is unreadable.
    """
    params: dict[str, Any] = {}
    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                from_file = json.load(handle)
        except (OSError, ValueError) as err:
            raise TrainingError(f"cannot read --params-file {path}: {err}") from err
        params.update(from_file)
    params.update({k: v for k, v in overrides.items() if v is not None})
    return params


def resolve_params(defaults: Mapping[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """The model's defaults updated by `overrides`.

    Raises:
        TrainingError: an override names an unknown parameter, or an unknown optimizer.
    """
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise TrainingError(f"unknown hyper-parameters {unknown}; known: {sorted(defaults)}")
    params = dict(defaults, **overrides)
    if params["optimizer"] not in ("adam", "sgd", "momentum"):
        raise TrainingError(f"optimizer must be adam, sgd or momentum, got {params['optimizer']!r}")
    return params


INTERLEAVE_CYCLE = 4  # shards a training rank reads at once (tf.data interleave), at most
MIN_STREAM_WINDOW = INTERLEAVE_CYCLE + 1  # the files being read, and one fetched ahead
DEFAULT_STREAM_WINDOW = 8


@dataclass(frozen=True)
class StreamOptions:
    """How a rank gets its shards when the dataset is on an object store (local data is read where it is).

    Streaming (the default): the shards are fetched in the order the rank reads them, at most `window` on local disk
    at once (counting the one being fetched), each deleted once read when its place is needed. Copy-first: the rank's
    whole share is copied to local disk before training starts.
    """

    copy_first: bool = False
    window: int = DEFAULT_STREAM_WINDOW
    attempts: int = 4  # tries of one shard's download before the run stops
    backoff_seconds: float = 0.5  # the wait after the first failed try, doubled after each next one

    def __post_init__(self) -> None:
        if self.window < MIN_STREAM_WINDOW:
            raise TrainingError(
                f"--stream-window must be at least {MIN_STREAM_WINDOW} shards (the {INTERLEAVE_CYCLE} a rank reads "
                f"at once and one fetched ahead), got {self.window}"
            )
        if self.attempts < 1:
            raise TrainingError(f"fetch attempts must be at least 1, got {self.attempts}")
        if self.backoff_seconds < 0:
            raise TrainingError(f"fetch backoff must be >= 0 seconds, got {self.backoff_seconds}")


COPY_FIRST = StreamOptions(copy_first=True)


@dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs; every rank gets the same copy."""

    data: str
    model_dir: str
    data_version: int | None = None  # the dataset version to read (default: the current one)
    params: dict[str, Any] = field(default_factory=dict)  # overrides of the model's defaults
    train_split: str = "train"
    eval_split: str | None = None  # default: validation, else test
    batch_size: int = 32  # per process
    max_steps: int | None = None  # the global step to stop at
    epochs: float | None = None  # used when max_steps is not given
    shuffle_buffer: int = 2048
    seed: int = 0
    keep_labels: tuple[str, ...] | None = None  # filter hook: train and evaluate on these labels only
    feature_spec: str | None = None  # tables: JSON/YAML file of how each column is used
    checkpoint_steps: int = 100
    summary_steps: int = 20
    export: bool = True
    skip_undecodable: bool = False  # images: skip (and count) records whose image does not decode
    warm_start_from: str | None = None  # a new model starting from this model dir's or export's variables
    stream: StreamOptions = field(default_factory=StreamOptions)  # shards on an object store: streamed or copied
    deterministic: bool = False  # records in the same order on every run with the same seed (tf.data waits)
    fail_on_rank: int | None = None  # test-only: this rank raises right after Horovod starts

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise TrainingError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.max_steps is not None and self.max_steps < 0:
            raise TrainingError(f"--max-steps must be >= 0, got {self.max_steps}")
        if self.epochs is not None and self.epochs <= 0:
            raise TrainingError(f"--epochs must be positive, got {self.epochs}")


def pick_eval_split(splits: dict, wanted: str | None) -> str:
    """The evaluation split: the one asked for, else validation, else test.

    Raises:
        DatasetError: the split asked for is missing or empty; or none was asked for and there is
            no non-empty validation or test split.
    """
    if wanted is not None:
        if wanted not in splits:
            raise DatasetError(f"split {wanted!r} is not in the dataset; it has {', '.join(sorted(splits))}")
        if not splits[wanted].num_records:
            with_records = ", ".join(name for name in sorted(splits) if splits[name].num_records)
            raise DatasetError(f"--eval-split {wanted!r} has no records; splits with records: {with_records}")
        return wanted
    for name in ("validation", "test"):
        if name in splits and splits[name].num_records:
            return name
    raise DatasetError(f"the dataset has no validation or test split to evaluate on ({', '.join(sorted(splits))})")
