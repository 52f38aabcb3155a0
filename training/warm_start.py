"""`--warm-start-from DIR`: a new model (fresh model dir) that starts from the variables of an earlier one.

DIR is a model dir (its latest checkpoint) or a SavedModel export (`MODEL/export/<timestamp>`, its
`variables/`). The driver builds the new graph once (no session) and lists its variables; a variable
is warm-started when the earlier model holds one of the same name and shape, and it means the same:

* the output layer (one logit per class) starts fresh when the label names differ, even when their
  number is the same (its rows would belong to other classes);
* a table column's variables (one-hot weights, embedding, buckets, crosses with it) start fresh when
  the vocabulary, boundaries or use of that column differ, even when the shapes match;
* when DIR records no model spec (an export or model dir written before model specs), neither is
  known to match: the output layer and every column's variables start fresh.

Everything else (convolutions, hidden layers, unchanged columns' embeddings) starts from DIR; the
optimizer's slots and the global step start fresh. Rank 0 warm-starts; Horovod's broadcast gives
its weights to the other ranks.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

from dataset.errors import TrainingError
from dataset.export import ASSETS
from dataset.fs import filesystem
from dataset.manifest import Manifest
from dataset.versions import public_url
from training.kind import Kind
from training.model_spec import MODEL_SPEC_FILE, read_model_spec, read_text
from training.spec_diff import changed_columns
from training.storage import fetch_checkpoint, needs_staging

EXPORT_SPEC = f"{ASSETS}/{MODEL_SPEC_FILE}"  # an export's copy of its model's spec (training/export.py)


@dataclass(frozen=True)
class WarmStart:
    """Decided on the driver: where from, and which variables start from there."""

    source: str
    variables: tuple[str, ...]  # warm-started
    fresh: tuple[str, ...]  # of the new graph, initialized as a new model's

    def settings(self, local_checkpoint: str):
        """The Estimator's `WarmStartSettings` for the checkpoint (a local path prefix)."""
        import tensorflow as tf

        names = [f"^{re.escape(name)}:0$" for name in self.variables]  # exact names (get_collection matches a regex)
        return tf.estimator.WarmStartSettings(ckpt_to_initialize_from=local_checkpoint, vars_to_warm_start=names)

    def text(self) -> str:
        fresh = f" (fresh: {', '.join(self.fresh)})" if self.fresh else ""
        total = len(self.variables) + len(self.fresh)
        return f"warm-started from {public_url(self.source)}: {len(self.variables)} of {total} variables{fresh}"


def _is_export(fs, root: str) -> bool:
    return fs.exists(f"{root}/variables/variables.index")


@contextlib.contextmanager
def local_checkpoint(source: str) -> Iterator[str]:
    """The checkpoint prefix of `source` (model dir or export) on local disk (a temporary copy from a store).

    Raises:
        TrainingError: `source` holds neither a checkpoint nor an export.
    """
    import tensorflow as tf

    fs, root = filesystem(source)
    fs.invalidate_cache(root)
    export = _is_export(fs, root)
    if not export and not fs.exists(f"{root}/checkpoint"):
        raise TrainingError(
            f"--warm-start-from {public_url(source)} holds neither a checkpoint nor a SavedModel export; "
            "give an earlier --model-dir or one of its exports (MODEL/export/<timestamp>)"
        )
    if not needs_staging(source):
        yield f"{source.rstrip('/')}/variables/variables" if export else tf.train.latest_checkpoint(source)
        return
    local = tempfile.mkdtemp(prefix="warm-start-")
    try:
        if export:
            names = [posixpath.basename(p) for p in fs.ls(f"{root}/variables", detail=False)]
            os.makedirs(os.path.join(local, "variables"))
            fs.get([f"{root}/variables/{n}" for n in names], [os.path.join(local, "variables", n) for n in names])
            yield os.path.join(local, "variables", "variables")
        else:
            fetch_checkpoint(source, local)
            yield tf.train.latest_checkpoint(local)
    finally:
        shutil.rmtree(local, ignore_errors=True)


def source_spec(source: str) -> dict | None:
    """The model spec `source` records: a model dir's model_spec.json, an export's assets.extra copy."""
    import json

    fs, root = filesystem(source)
    if _is_export(fs, root):
        text = read_text(f"{source.rstrip('/')}/{EXPORT_SPEC}")
        return json.loads(text) if text else None
    return read_model_spec(source)


def graph_variables(kind: Kind, manifest: Manifest, model_params: dict) -> dict[str, list[int]]:
    """The model variables (name → shape) of the graph the ranks will build, built here once without a session."""
    import tensorflow as tf

    with tf.Graph().as_default():
        serialized = tf.compat.v1.placeholder(tf.string, [None])
        features, _ = kind.parser(manifest, model_params, False)(serialized)
        kind.model_fn(manifest)(features, None, tf.estimator.ModeKeys.PREDICT, dict(model_params, horovod=False))
        variables = tf.compat.v1.global_variables()
        return {v.op.name: v.shape.as_list() for v in variables if v.op.name != "global_step"}


def plan_warm_start(source: str, kind: Kind, manifest: Manifest, model_params: dict, spec: dict) -> WarmStart:
    """Which variables of the new model start from `source` (see the module's rules).

    Raises:
        TrainingError: `source` is not a model of this kind, or nothing in it fits the new model.
    """
    import tensorflow as tf

    recorded = source_spec(source)
    if recorded is not None and recorded.get("kind") != spec["kind"]:
        raise TrainingError(
            f"--warm-start-from {public_url(source)} is a model of {recorded.get('kind')} data; "
            f"this dataset is {spec['kind']}: train without --warm-start-from"
        )
    with local_checkpoint(source) as checkpoint:
        held = {name: list(shape) for name, shape in tf.train.list_variables(checkpoint)}
    labels_differ = recorded is None or recorded.get("labels") != spec["labels"]
    columns = set(spec.get("columns", {})) if recorded is None else changed_columns(recorded, spec)
    warm, fresh = [], []
    for name, shape in sorted(graph_variables(kind, manifest, model_params).items()):
        meaning_changed = (labels_differ and name.startswith(kind.output_scopes)) or (
            kind.uses_column is not None and any(kind.uses_column(name, c) for c in columns)
        )
        (fresh if meaning_changed or held.get(name) != shape else warm).append(name)
    if not warm:
        raise TrainingError(
            f"no variable of {public_url(source)} fits the model for this data (names or shapes differ); "
            "train without --warm-start-from"
        )
    return WarmStart(source, tuple(warm), tuple(fresh))
