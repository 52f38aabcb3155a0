"""Table datasets: a wide-and-deep model over feature columns derived from the manifest (see `KIND`)."""

from __future__ import annotations

from typing import Any

from dataset.manifest import Manifest
from training.config import TrainConfig
from training.kind import Kind
from training.tables.features import (
    constants,
    graph_spec,
    keep_constants,
    load_feature_spec,
    plan_features,
    variable_uses_column,
)
from training.tables.model import TABLE_PARAMS, table_model_fn
from training.tables.parser import table_parser
from training.tables.serving import table_receiver_fn


def _model_params(manifest: Manifest, config: TrainConfig, params: dict[str, Any], labels: tuple[str, ...]) -> dict:
    """Adds the resolved feature plan (checked here, on the driver, once) and what its columns bake in."""
    plan = plan_features(manifest, load_feature_spec(config.feature_spec))
    return dict(params, feature_plan=plan, constants=constants(manifest, plan))


KIND = Kind(
    name="table",
    default_params=TABLE_PARAMS,
    model_params=_model_params,
    parser=table_parser,
    label_filter=None,
    model_fn=table_model_fn,
    serving_receiver=table_receiver_fn,
    graph_spec=graph_spec,
    output_scopes=("linear_model/", "deep_logits/"),
    uses_column=variable_uses_column,
    keep_constants=keep_constants,
)
