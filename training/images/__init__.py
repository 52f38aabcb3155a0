"""Image datasets: a small CNN over decoded, resized images (see `KIND`)."""

from __future__ import annotations

from typing import Any

from dataset.decode import scan_undecodable
from dataset.errors import TrainingError
from dataset.features import IMAGE_ENCODED
from dataset.manifest import Manifest
from training.config import TrainConfig
from training.images.augment import check_augment
from training.images.model import IMAGE_PARAMS, model_fn
from training.images.parser import image_parser, label_filter, skip_filter
from training.images.serving import image_receiver_fn
from training.kind import Kind


def _model_params(manifest: Manifest, config: TrainConfig, params: dict[str, Any], labels: tuple[str, ...]) -> dict:
    if config.feature_spec:
        raise TrainingError("--feature-spec applies to table datasets only")
    check_augment(params["augment"])
    return dict(params, labels=list(labels))


def _graph_spec(manifest: Manifest, params: dict[str, Any]) -> dict:
    """The network reads the encoded image and the label; its shape is in the hyper-parameters."""
    return {"features": [IMAGE_ENCODED, manifest.label_feature]}


KIND = Kind(
    name="images",
    default_params=IMAGE_PARAMS,
    model_params=_model_params,
    parser=image_parser,
    label_filter=label_filter,
    model_fn=lambda manifest: model_fn,
    serving_receiver=image_receiver_fn,
    scan_undecodable=scan_undecodable,
    skip_filter=skip_filter,
    graph_spec=_graph_spec,
    output_scopes=("logits/",),
)
