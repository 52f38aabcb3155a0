"""SavedModel export with the training data's manifest and the model's labels (layout: `dataset.export`)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable

import tensorflow as tf

from dataset.export import LABELS_ASSET, LINEAGE_ASSET, MANIFEST_ASSET
from dataset.manifest import Manifest
from training.model_spec import MODEL_SPEC_FILE


def export_model(
    estimator: tf.estimator.Estimator,
    export_base: str,
    labels: list[str],
    receiver: Callable,
    manifest: Manifest,
    lineage: dict | None = None,
    spec: dict | None = None,
) -> str:
    """Export the latest checkpoint as a SavedModel with `assets.extra/labels.json`, `assets.extra/manifest.json`,
    `assets.extra/lineage.json` (the dataset URL, version and manifest sha256) and `assets.extra/model_spec.json`
    (what the graph was built from, for `--warm-start-from` an export); returns its path."""
    with tempfile.TemporaryDirectory() as tmp:
        labels_file, manifest_file = os.path.join(tmp, LABELS_ASSET), os.path.join(tmp, MANIFEST_ASSET)
        lineage_file = os.path.join(tmp, LINEAGE_ASSET)
        with open(labels_file, "w", encoding="utf-8") as out:
            json.dump(list(labels), out, ensure_ascii=False)
        with open(manifest_file, "w", encoding="utf-8") as out:
            out.write(manifest.to_json())
        with open(lineage_file, "w", encoding="utf-8") as out:
            json.dump(lineage or {}, out, sort_keys=True)
        extra = {LABELS_ASSET: labels_file, MANIFEST_ASSET: manifest_file, LINEAGE_ASSET: lineage_file}
        if spec is not None:
            extra[MODEL_SPEC_FILE] = os.path.join(tmp, MODEL_SPEC_FILE)
            with open(extra[MODEL_SPEC_FILE], "w", encoding="utf-8") as out:
                json.dump(spec, out, sort_keys=True, ensure_ascii=False)
        path = estimator.export_saved_model(export_base, receiver, assets_extra=extra)
    return path.decode("utf-8") if isinstance(path, bytes) else path
