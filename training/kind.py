"""What a kind of data plugs into the generic training: one `Kind` per dataset kind."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dataset.manifest import Manifest
from training.config import TrainConfig
from training.input import Parser, RecordFilter

ModelFn = Callable[..., Any]  # (features, labels, mode, params) → EstimatorSpec
Receiver = Callable[[], Any]  # → ServingInputReceiver


@dataclass(frozen=True)
class Kind:
    """The kind-specific parts of training; everything else is generic.

    Attributes:
        name: the manifest's `kind`.
        default_params: the model's hyper-parameters and their defaults.
        model_params: (manifest, config, params, labels) → the Estimator's `params`: the
            hyper-parameters plus what the model needs from the data; runs once, on the driver,
            and raises `TrainingError` for options that do not fit the data.
        parser: (manifest, params, training) → a batch of serialized Examples → (features, labels);
            `training` asks for the training preprocessing (augmentation), else evaluation's.
        label_filter: (manifest, labels) → a record filter keeping those labels; None if the
            kind cannot filter by label.
        model_fn: (manifest) → the `model_fn` for this dataset.
        serving_receiver: (manifest, params) → the export's serving input receiver fn.
    """

    name: str
    default_params: Mapping[str, Any]
    model_params: Callable[[Manifest, TrainConfig, dict, tuple[str, ...]], dict]
    parser: Callable[[Manifest, dict, bool], Parser]
    label_filter: Callable[[Manifest, tuple[str, ...]], RecordFilter] | None
    model_fn: Callable[[Manifest], ModelFn]
    serving_receiver: Callable[[Manifest, dict], Receiver]
