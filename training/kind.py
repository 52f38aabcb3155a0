"""What a kind of data plugs into the generic training: one `Kind` per dataset kind."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dataset.decode import BadRecord
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
        scan_undecodable: (data, manifest, split, first_only) → the records the model's input
            cannot decode; None if every record that parses can be used.
        skip_filter: (manifest, bad records) → a record filter dropping those records.
        graph_spec: (manifest, model params) → what the graph bakes in from the data besides the labels:
            "features" (the names the model reads) and the kind's own entries (training.model_spec).
        output_scopes: variable scopes whose last axis is one logit per class (the output layer):
            not warm-started when the labels differ.
        uses_column: (variable name, column name) → whether the variable belongs to a feature column built from
            that column (not warm-started when what the column bakes in differs); None for kinds without columns.
        keep_constants: (model params, recorded model spec) → the model params with the numbers a continued run keeps
            from the model dir (tables: normalisation, bucket boundaries); None when the graph bakes in none.
    """

    name: str
    default_params: Mapping[str, Any]
    model_params: Callable[[Manifest, TrainConfig, dict, tuple[str, ...]], dict]
    parser: Callable[[Manifest, dict, bool], Parser]
    label_filter: Callable[[Manifest, tuple[str, ...]], RecordFilter] | None
    model_fn: Callable[[Manifest], ModelFn]
    serving_receiver: Callable[[Manifest, dict], Receiver]
    scan_undecodable: Callable[[str, Manifest, str, bool], list[BadRecord]] | None = None
    skip_filter: Callable[[Manifest, tuple[BadRecord, ...]], RecordFilter] | None = None
    graph_spec: Callable[[Manifest, dict], dict] = lambda manifest, params: {"features": [manifest.label_feature]}
    output_scopes: tuple[str, ...] = ()
    uses_column: Callable[[str, str], bool] | None = None
    keep_constants: Callable[[dict, dict], dict] | None = None
