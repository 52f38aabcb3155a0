"""Table records → model inputs: the input columns, the key, and the label (names or floats)."""

from __future__ import annotations

import tensorflow as tf

from dataset.manifest import Manifest
from training.input import KEY_FEATURE, Parser
from training.tables.features import input_columns


def table_parser(manifest: Manifest, params: dict, training: bool = False) -> Parser:
    """Batch of table Examples → (input columns, label): label names for classification, floats for regression.

    Training and evaluation parse alike (`training` is unused).
    """
    table = manifest.table
    label, key = table.label, table.key
    inputs = sorted(input_columns(manifest))
    spec = manifest.tf_feature_spec([*inputs, label] + ([key] if key else []))

    def parse(serialized: tf.Tensor) -> tuple[dict, tf.Tensor]:
        parsed = tf.io.parse_example(serialized, spec)
        features = {name: parsed[name] for name in inputs}
        features[KEY_FEATURE] = (
            tf.strings.as_string(parsed[key])
            if key and parsed[key].dtype != tf.string
            else (parsed[key] if key else tf.fill(tf.shape(serialized), ""))
        )
        value = parsed[label]
        if table.task == "regression":
            return features, tf.cast(value, tf.float32)
        return features, value if value.dtype == tf.string else tf.strings.as_string(value)

    return parse
