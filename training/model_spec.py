"""What a model's graph is built from, recorded beside its checkpoint (`model_spec.json`), and read back.

The record holds what the `model_fn` bakes in from the data: the kind and task, the label names (in
order: their index is the class id), the features the model reads (name, dtype, shape), and the
kind's own part (tables: each input column's use with the vocabulary, bucket boundaries or
normalisation it bakes in; images: the network's shape). A run that continues from a checkpoint
compares it with the version it is about to read (`training.spec_diff`).
"""

from __future__ import annotations

import json
from typing import Any

from dataset.fs import filesystem
from dataset.manifest import Manifest
from training.kind import Kind
from training.storage import needs_staging, write_text

MODEL_SPEC_FILE = "model_spec.json"
SPEC_FORMAT = 1
# Hyper-parameters a continued run may change: they shape no variable the checkpoint holds.
FREE_PARAMS = frozenset({"learning_rate", "warmup_steps", "dropout", "augment"})


def model_spec(kind: Kind, manifest: Manifest, model_params: dict, labels: tuple[str, ...]) -> dict[str, Any]:
    """The JSON-able record of what the graph of `kind.model_fn(manifest)` with `model_params` depends on."""
    task = manifest.table.task if manifest.table is not None else "classification"
    part = kind.graph_spec(manifest, model_params)
    spec = {
        "format": SPEC_FORMAT,
        "kind": manifest.kind,
        "task": task,
        "label_feature": manifest.label_feature,
        "labels": list(labels) if task == "classification" else [],
        "features": {
            name: {"dtype": manifest.features[name].dtype, "shape": list(manifest.features[name].shape)}
            for name in sorted(part.pop("features"))
        },
        "params": {k: v for k, v in sorted(model_params.items()) if k in kind.default_params and k not in FREE_PARAMS},
        **part,
    }
    return json.loads(json.dumps(spec))  # tuples → lists, floats as JSON gives them back: compared as read


def spec_url(model_dir: str) -> str:
    return f"{model_dir.rstrip('/')}/{MODEL_SPEC_FILE}"


def read_model_spec(model_dir: str) -> dict[str, Any] | None:
    """The record in `model_dir` (None when there is none).

    Raises:
        TrainingError: the file is there but is not a record this code wrote.
    """
    from dataset.errors import TrainingError

    url = spec_url(model_dir)
    text = read_text(url)
    if text is None:
        return None
    try:
        spec = json.loads(text)
    except ValueError as err:
        raise TrainingError(f"{url} is not JSON ({err}); train into a fresh --model-dir") from err
    if not isinstance(spec, dict) or spec.get("format") != SPEC_FORMAT:
        raise TrainingError(f"{url} is not a model spec of format {SPEC_FORMAT}; train into a fresh --model-dir")
    return spec


def write_model_spec(model_dir: str, spec: dict[str, Any]) -> None:
    """Rank 0, before it trains: the record goes beside the checkpoints (uploaded with them on a store)."""
    if not needs_staging(model_dir):
        import tensorflow as tf

        tf.io.gfile.makedirs(model_dir)  # the Estimator would make it only when it saves
    write_text(spec_url(model_dir), json.dumps(spec, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def read_text(url: str) -> str | None:
    """A small file's text: fsspec on the store, tf.io.gfile elsewhere; None when it does not exist."""
    if needs_staging(url):
        fs, path = filesystem(url)
        fs.invalidate_cache(path.rsplit("/", 1)[0])  # rank 0 of an earlier run wrote it
        return fs.cat_file(path).decode("utf-8") if fs.exists(path) else None
    import tensorflow as tf

    if not tf.io.gfile.exists(url):
        return None
    with tf.io.gfile.GFile(url) as handle:
        return handle.read()
