"""Feature columns for tables, derived from the manifest's statistics and an optional spec file.

Spec (JSON or YAML), every part optional:

    columns:
      island: {type: categorical, as: embedding, dimension: 4}   # or as: indicator (one-hot)
      body_mass_g: {type: bucketized}                            # quantile boundaries from the manifest
      bill_length_mm: {type: numeric}                            # normalized with mean/std
      sex: {type: hashed, hash_bucket_size: 8, as: indicator}
    crosses:
      - {columns: [island, sex], hash_bucket_size: 16}          # one-hot of the crossed buckets
    exclude: [year]

Columns the spec does not name get defaults: numbers normalized, strings with up to
`ONE_HOT_MAX` values one-hot, larger vocabularies embedded. The label, the key and list
columns are never inputs.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import tensorflow as tf

from dataset.errors import TrainingError
from dataset.export import column_input_name
from dataset.manifest import ColumnStats, Manifest

ONE_HOT_MAX = 10
NAME = re.compile(r"^[A-Za-z0-9_.\-/]+$")  # what TensorFlow accepts in a feature column's scope
TYPES = ("numeric", "bucketized", "categorical", "hashed")


def load_feature_spec(path: str | None) -> dict[str, Any]:
    """The spec file as a dict (JSON, or YAML when the name ends in .yaml/.yml); {} without a file."""
    if not path:
        return {}
    try:
        with tf.io.gfile.GFile(path) as handle:
            text = handle.read()
        if path.endswith((".yaml", ".yml")):
            import yaml

            return yaml.safe_load(text) or {}
        return json.loads(text)
    except Exception as err:
        raise TrainingError(f"cannot read --feature-spec {path}: {err}") from err


def input_columns(manifest: Manifest) -> dict[str, tuple[str, ColumnStats]]:
    """The scalar columns that can be model inputs, as name → (dtype, statistics); label, key and lists left out."""
    table = manifest.table
    return {
        name: (manifest.features[name].dtype, column.stats)
        for name, column in table.columns.items()
        if name not in (table.label, table.key) and manifest.features[name].length == "fixed"
    }


def plan_features(manifest: Manifest, spec: dict[str, Any]) -> dict[str, Any]:
    """Resolve the spec against the manifest into a plain, JSON-able plan.

    Raises:
        TrainingError: the spec names unknown columns or types, or crosses fewer than two columns.
    """
    available = input_columns(manifest)
    named = dict(spec.get("columns") or {})
    excluded = list(spec.get("exclude") or [])
    crosses = list(spec.get("crosses") or [])
    mentioned = set(named) | set(excluded) | {c for cross in crosses for c in cross.get("columns", [])}
    unknown = sorted(mentioned - set(available))
    if unknown:
        raise TrainingError(
            f"the feature spec names unknown columns {unknown}; input columns are: {', '.join(available)}"
        )
    plan: dict[str, Any] = {"columns": {}, "crosses": []}
    for name, (dtype, stats) in available.items():
        if name in excluded:
            continue
        if not NAME.match(name):
            raise TrainingError(
                f"column {name!r} cannot name a feature column (letters, digits, _ . - / only); "
                "rename it in the source or list it under exclude in --feature-spec"
            )
        use = dict(named.get(name) or {})
        if "type" not in use:
            if dtype == "string":
                size = len(stats.vocabulary)
                if size == 0:  # binary, all-null or unseen in the statistics split: no vocabulary to one-hot
                    use = {"type": "hashed", "hash_bucket_size": 16, "as": "indicator"}
                else:
                    use = {"type": "categorical", "as": "indicator" if size <= ONE_HOT_MAX else "embedding"}
            else:
                use = {"type": "numeric"}
        if use["type"] not in TYPES:
            raise TrainingError(f"column {name!r}: type {use['type']!r} is not one of {', '.join(TYPES)}")
        if use["type"] in ("numeric", "bucketized") and dtype == "string":
            raise TrainingError(f"column {name!r} holds strings; it cannot be {use['type']}")
        if use["type"] == "categorical" and dtype != "string":
            raise TrainingError(f"column {name!r} is numeric; use type bucketized or hashed for it")
        if use["type"] == "categorical" and not stats.vocabulary:
            raise TrainingError(f"column {name!r} has no vocabulary in the manifest; use type hashed for it")
        use.setdefault("as", "indicator" if use["type"] != "numeric" else None)
        if use["as"] == "embedding":
            size = len(stats.vocabulary) or use.get("hash_bucket_size", 16)
            use.setdefault("dimension", max(2, math.ceil(size**0.25 * 2)))
        plan["columns"][name] = use
    _check_input_names(plan["columns"])
    for cross in crosses:
        if len(cross.get("columns", [])) < 2:
            raise TrainingError(f"a cross needs two or more columns, got {cross.get('columns')}")
        plan["crosses"].append(
            {"columns": list(cross["columns"]), "hash_bucket_size": int(cross.get("hash_bucket_size", 64))}
        )
    return plan


def _check_input_names(columns: dict[str, Any]) -> None:
    """Two columns whose serving input names would be the same (`a.b` and `a_b`) cannot both be inputs."""
    by_input: dict[str, list[str]] = {}
    for name in columns:
        by_input.setdefault(column_input_name(name), []).append(name)
    clashes = [names for names in by_input.values() if len(names) > 1]
    if clashes:
        raise TrainingError(
            f"columns {clashes[0]} would share the serving input {column_input_name(clashes[0][0])!r}; "
            "rename one in the source or list it under exclude in --feature-spec"
        )


def baked(use: dict, stats: ColumnStats) -> dict[str, Any]:
    """What a column's feature column bakes into the graph from the statistics: the normalisation of a
    number, the bucket boundaries, the vocabulary in id order (hashed columns: nothing)."""
    if use["type"] == "numeric":
        return {"mean": float(stats.mean or 0.0), "stddev": float(stats.stddev or 1.0) or 1.0}
    if use["type"] == "bucketized":
        return {"boundaries": [float(b) for b in stats.boundaries] or [0.0]}
    if use["type"] == "categorical":
        return {"vocabulary": [v for v, _ in stats.vocabulary]}
    return {}


def constants(manifest: Manifest, plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per input column of the plan: what its feature column bakes in, from this version's statistics."""
    columns = input_columns(manifest)
    return {name: baked(use, columns[name][1]) for name, use in plan["columns"].items()}


# What a continued run keeps from the model dir instead of taking the version's: numbers that move with every append
# and change neither the graph's shape nor what an input means (a bucket count change is still refused).
KEPT = ("mean", "stddev", "boundaries")


def keep_constants(params: dict[str, Any], recorded: dict[str, Any]) -> dict[str, Any]:
    """The model params with each column's normalisation and bucket boundaries taken from the `recorded` model
    spec (where the column's use is the same and the bucket count too), so the graph is the one the checkpoint
    was trained with."""
    old_columns, kept = recorded.get("columns", {}), {}
    for name, values in params["constants"].items():
        old, use = old_columns.get(name, {}), params["feature_plan"]["columns"][name]
        same_use = {k: v for k, v in old.items() if k not in KEPT and k != "vocabulary"} == use
        if same_use and len(old.get("boundaries", [])) == len(values.get("boundaries", [])):
            values = dict(values, **{k: old[k] for k in KEPT if k in old and k in values})
        kept[name] = values
    return dict(params, constants=kept)


def graph_spec(manifest: Manifest, params: dict[str, Any]) -> dict[str, Any]:
    """The table model's part of `training.model_spec`: each input column's use with what it bakes in, the crosses."""
    plan = params["feature_plan"]
    used = {name: dict(use, **params["constants"][name]) for name, use in plan["columns"].items()}
    crossed = {c for cross in plan["crosses"] for c in cross["columns"]}
    features = sorted(set(used) | crossed | {manifest.table.label})
    return {"features": features, "label_column": manifest.table.label, "columns": used, "crosses": plan["crosses"]}


def variable_uses_column(variable: str, column: str) -> bool:
    """Whether a variable belongs to a feature column built from `column` (its one-hot, embedding, buckets or a
    cross with it), by the scope names feature columns take."""
    own = {column, f"{column}_indicator", f"{column}_embedding", f"{column}_bucketized"}
    for part in variable.split("/"):
        if own & set(part.removesuffix("_indicator").split("_X_")) or part in own:
            return True
    return False


def _numeric(name: str, values: dict[str, Any]) -> Any:
    mean, std = values["mean"], values["stddev"]
    # In float64: a timestamp in microseconds (about 1.7e15) keeps its seconds, which float32 would not.
    return tf.feature_column.numeric_column(
        name, normalizer_fn=lambda x: tf.cast((tf.cast(x, tf.float64) - mean) / std, tf.float32)
    )


def _categorical(name: str, use: dict, dtype: str, values: dict[str, Any]) -> Any:
    if use["type"] == "bucketized":
        boundaries = values["boundaries"]
        source = tf.feature_column.numeric_column(name, dtype=tf.float64 if dtype == "int64" else tf.float32)
        return tf.feature_column.bucketized_column(source, boundaries)
    if use["type"] == "hashed":
        return tf.feature_column.categorical_column_with_hash_bucket(
            name, int(use.get("hash_bucket_size", 16)), dtype=tf.string if dtype == "string" else tf.int64
        )
    vocabulary = values["vocabulary"]
    return tf.feature_column.categorical_column_with_vocabulary_list(name, vocabulary, num_oov_buckets=1)


def feature_columns(manifest: Manifest, plan: dict[str, Any], baked_in: dict[str, dict]) -> tuple[list, list]:
    """(wide, deep): one-hots, bucketized columns and crosses for the linear part; normalized
    numbers and embeddings for the DNN part. `baked_in`: per column, what it bakes in (`constants`, or the
    model dir's on a continued run)."""
    columns = input_columns(manifest)
    wide, deep, categorical = [], [], {}
    for name, use in plan["columns"].items():
        if use["type"] == "numeric":
            deep.append(_numeric(name, baked_in[name]))
            continue
        column = _categorical(name, use, columns[name][0], baked_in[name])
        categorical[name] = column
        if use["as"] == "embedding":
            deep.append(tf.feature_column.embedding_column(column, int(use["dimension"])))
        elif use["type"] == "bucketized":
            wide.append(column)
        else:
            wide.append(tf.feature_column.indicator_column(column))
    for cross in plan["crosses"]:
        keys = [
            categorical[c] if plan["columns"].get(c, {}).get("type") == "bucketized" else c for c in cross["columns"]
        ]
        wide.append(
            tf.feature_column.indicator_column(tf.feature_column.crossed_column(keys, cross["hash_bucket_size"]))
        )
    return wide, deep
