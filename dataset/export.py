"""The layout of a model export, shared by training (which writes it) and inference (which reads it).

`model_dir/export/<timestamp>/` is a SavedModel with these signatures:

- `serving_default` / `predict`: serialized `tf.train.Example`s (`examples`);
- images: `image_bytes:predict`, encoded image bytes (`image_bytes`);
- tables: `columns:predict`, one input per raw column, named `column_input_name(column)`
  (a signature's inputs must be identifiers: `a.b` becomes `a_b`).

`assets.extra/` holds `manifest.json` (the training data's manifest: kind, features, label,
key, task), `labels.json` (the model's classes, index = class id) and `lineage.json` (the dataset
URL, version and version manifest sha256 it was trained on; see `dataset.versions.lineage`).
"""

from __future__ import annotations

import json
import posixpath
import re

from dataset.errors import InferenceError
from dataset.fs import filesystem
from dataset.manifest import Manifest

EXAMPLES_INPUT = "examples"
IMAGE_BYTES_INPUT = "image_bytes"
COLUMNS_INPUT = "columns"
ASSETS = "assets.extra"
LABELS_ASSET = "labels.json"
MANIFEST_ASSET = "manifest.json"
LINEAGE_ASSET = "lineage.json"  # {"data": URL, "version": N, "manifest_sha256": ...} of the training data


def column_input_name(column: str) -> str:
    """The `columns:predict` input of a table column: every character outside [A-Za-z0-9_] as `_`,
    and `_` before a leading digit (TensorFlow binds signature inputs as Python keyword names)."""
    name = re.sub(r"\W", "_", column, flags=re.ASCII)
    return f"_{name}" if name[:1].isdigit() else name


def resolve_export(url: str) -> str:
    """`url` if it is a SavedModel, else the newest export under `url` or `url/export` (a model_dir).

    Raises:
        InferenceError: no SavedModel is there.
    """
    fs, path = filesystem(url)
    for folder in (path, f"{path}/export"):
        if fs.exists(f"{folder}/saved_model.pb"):
            return fs.unstrip_protocol(folder) if "://" in url else folder
        if not fs.isdir(folder):
            continue
        exports = sorted(
            (
                p.rstrip("/")
                for p in fs.ls(folder, detail=False)
                if posixpath.basename(p.rstrip("/")).isdigit() and fs.exists(f"{p.rstrip('/')}/saved_model.pb")
            ),
            key=lambda p: int(posixpath.basename(p)),
        )  # timestamps; temp-* folders are half-written
        if exports:
            return fs.unstrip_protocol(exports[-1]) if "://" in url else exports[-1]
    raise InferenceError(f"no SavedModel at {url} (nor an export under it); pass model_dir/export/<timestamp>")


def _read(export_dir: str, name: str) -> str:
    fs, path = filesystem(export_dir)
    try:
        return fs.cat_file(f"{path}/{ASSETS}/{name}").decode("utf-8")
    except FileNotFoundError:
        raise InferenceError(f"{export_dir} has no {ASSETS}/{name}: export it again with this version") from None


def load_labels(export_dir: str) -> list[str]:
    """The model's classes (index = class id); empty for regression."""
    return list(json.loads(_read(export_dir, LABELS_ASSET)))


def load_manifest(export_dir: str) -> Manifest:
    """The manifest of the data the export was trained on."""
    return Manifest.from_json(_read(export_dir, MANIFEST_ASSET))


def load_lineage(export_dir: str) -> dict:
    """The training data's URL, version and manifest sha256 recorded with the export ({} for older exports)."""
    try:
        return dict(json.loads(_read(export_dir, LINEAGE_ASSET)))
    except InferenceError:
        return {}
