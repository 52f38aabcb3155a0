"""What differs between image and table datasets: the model, its default hyper-parameters,
the extra `params` it needs from the manifest, and its serving input."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from conversion.manifest import Manifest
from training.config import DEFAULT_PARAMS, TrainConfig, TrainingError


def default_params(manifest: Manifest) -> dict[str, Any]:
    if manifest.kind == "table":
        from training.table_model import TABLE_PARAMS

        return TABLE_PARAMS
    return DEFAULT_PARAMS


def model_params(
    manifest: Manifest, config: TrainConfig, params: dict[str, Any], labels: tuple[str, ...]
) -> dict[str, Any]:
    """The Estimator's `params`: hyper-parameters plus what the model_fn needs from the data."""
    if manifest.kind == "table":
        from training.table_features import load_feature_spec, plan_features

        plan = plan_features(manifest, load_feature_spec(config.feature_spec))
        return dict(params, manifest=manifest.to_json(), feature_plan=plan)
    if config.feature_spec:
        raise TrainingError("--feature-spec applies to table datasets only")
    return dict(params, labels=list(labels))


def model_fn_for(manifest: Manifest) -> Callable:
    if manifest.kind == "table":
        from training.table_model import table_model_fn

        return table_model_fn
    from training.model import model_fn

    return model_fn


def receiver_for(manifest: Manifest, params: dict[str, Any]) -> Callable:
    """The serving input of the model; `params` as `model_params` made them."""
    from training.serving import serving_input_receiver_fn, table_receiver_fn

    if manifest.kind == "table":
        return table_receiver_fn(manifest, params["feature_plan"])
    return serving_input_receiver_fn(params)
