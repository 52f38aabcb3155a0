"""The registry of dataset kinds: one entry per kind, the only place that tells kinds apart.

A new kind of data (say, text) is a sub-package with its `KIND` and one line here.
"""

from __future__ import annotations

from dataset.decode import BadRecord
from dataset.errors import TrainingError
from dataset.manifest import Manifest
from training import images, tables
from training.input import InputSpec, RecordFilter, input_spec
from training.kind import Kind

KINDS: dict[str, Kind] = {kind.name: kind for kind in (images.KIND, tables.KIND)}


def kind_for(manifest: Manifest) -> Kind:
    """The registered kind of a dataset.

    Raises:
        TrainingError: no kind is registered under the manifest's `kind`.
    """
    if manifest.kind not in KINDS:
        raise TrainingError(f"datasets of kind {manifest.kind!r} cannot be trained; known kinds: {', '.join(KINDS)}")
    return KINDS[manifest.kind]


def split_input_spec(
    data: str,
    manifest: Manifest,
    split: str,
    params: dict,
    threads: int,
    keep_labels: tuple[str, ...] | None = None,
    training: bool = False,
    skip: tuple[BadRecord, ...] = (),
) -> InputSpec:
    """The `InputSpec` of one split with its kind's parser (and label filter, for `keep_labels`).

    `training` picks the kind's training preprocessing (augmentation), else evaluation's.

    Raises:
        DatasetError: the split or a kept label does not exist, or the split has no records.
        TrainingError: the kind cannot filter by label.
    """
    kind = kind_for(manifest)
    manifest.split(split)
    keep = None
    if keep_labels is not None:
        if kind.label_filter is None:
            raise TrainingError(f"--labels (a label subset) does not work for {manifest.kind} datasets")
        keep = kind.label_filter(manifest, keep_labels)
    if skip:
        if kind.skip_filter is None:
            raise TrainingError(f"records of {manifest.kind} datasets cannot be skipped")
        keep = _both(keep, kind.skip_filter(manifest, skip))
    return input_spec(data, manifest, split, kind.parser(manifest, params, training), threads, keep)


def _both(first: RecordFilter | None, second: RecordFilter) -> RecordFilter:
    import tensorflow as tf

    if first is None:
        return second
    return lambda serialized: tf.logical_and(first(serialized), second(serialized))
