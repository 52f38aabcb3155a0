"""The tf.data input pipeline built from the manifest alone, and the preprocessing steps."""

from __future__ import annotations

import shutil
from collections import Counter

import numpy as np
import pytest
import tensorflow as tf

from conversion.images.convert import convert_images
from conversion.images.options import ImageConvertOptions
from dataset.errors import DatasetError
from dataset.versions import read_manifest
from tests.images import image_bytes
from training.images.augment import eval_images
from training.images.model import IMAGE_PARAMS as DEFAULT_PARAMS
from training.images.preprocess import decode, normalize, resize
from training.input import KEY_FEATURE, eval_input_fn, split_records, steps_per_epoch, train_input_fn
from training.kinds import split_input_spec


def keys_of(dataset: tf.data.Dataset) -> list[str]:
    return [k.decode() for features, _ in dataset for k in features[KEY_FEATURE].numpy()]


def test_preprocessing_steps_eagerly_and_inside_dataset_map():
    encoded = tf.constant(image_bytes("PNG", (12, 10), "RGBA"))
    eager = normalize(resize(decode(encoded, 3), (4, 6)))
    assert eager.shape == (4, 6, 3) and eager.dtype == tf.float32
    assert 0.0 <= float(tf.reduce_min(eager)) and float(tf.reduce_max(eager)) <= 1.0
    mapped = next(iter(tf.data.Dataset.from_tensors(encoded).map(lambda e: normalize(resize(decode(e, 3), (4, 6))))))
    np.testing.assert_allclose(mapped.numpy(), eager.numpy())
    batch = eval_images(tf.constant([image_bytes("JPEG", (8, 8), "L"), image_bytes("GIF", (5, 9))]), (4, 6), 3, "none")
    assert batch.shape == (2, 4, 6, 3)


def test_eval_reads_every_record_once_with_labels_from_the_manifest(shapes_dataset):
    manifest = read_manifest(str(shapes_dataset))
    spec = split_input_spec(str(shapes_dataset), manifest, "test", DEFAULT_PARAMS, threads=2)
    seen = []
    for features, labels in eval_input_fn(spec, batch_size=7)():
        assert features["image"].shape[1:] == (32, 32, 3)
        seen += [(k.decode(), t.decode()) for k, t in zip(features[KEY_FEATURE].numpy(), labels.numpy())]
    assert len(seen) == len(set(seen)) == manifest.splits["test"].num_records
    assert all(key.split("/")[0] == label for key, label in seen)


def test_training_batches_are_sharded_across_ranks_and_count_exact(shapes_dataset):
    manifest = read_manifest(str(shapes_dataset))
    spec = split_input_spec(str(shapes_dataset), manifest, "train", DEFAULT_PARAMS, threads=2)
    records = manifest.splits["train"].num_records
    steps = steps_per_epoch(records, 8, 2)
    per_rank = [keys_of(train_input_fn(spec, 8, steps, rank, 2, seed=1, shuffle_buffer=64)()) for rank in (0, 1)]
    assert [len(keys) for keys in per_rank] == [steps * 8, steps * 8]
    assert not set(per_rank[0]) & set(per_rank[1])  # two files per split: one per rank
    again = keys_of(train_input_fn(spec, 8, steps, 0, 2, seed=1, shuffle_buffer=64)())
    assert len(again) == steps * 8 and not set(again) & set(per_rank[1])  # the same files, reshuffled


def test_fewer_files_than_ranks_shards_records(shapes_dataset):
    manifest = read_manifest(str(shapes_dataset))
    spec = split_input_spec(str(shapes_dataset), manifest, "validation", DEFAULT_PARAMS, threads=1)
    one_file = type(spec)(**{**spec.__dict__, "files": spec.files[:1]})
    n = manifest.splits["validation"].files[0].num_records
    ranks = [keys_of(train_input_fn(one_file, 1, n // 3, rank, 3, seed=0, shuffle_buffer=1)()) for rank in range(3)]
    assert all(len(keys) == n // 3 for keys in ranks)
    assert len(set(ranks[0]) | set(ranks[1]) | set(ranks[2])) == 3 * (n // 3)


def test_label_filter_hook_and_counts(shapes_dataset):
    manifest = read_manifest(str(shapes_dataset))
    spec = split_input_spec(str(shapes_dataset), manifest, "test", DEFAULT_PARAMS, 2, keep_labels=("circle", "square"))
    labels = Counter(label.decode() for _, batch in eval_input_fn(spec, 16)() for label in batch.numpy())
    assert set(labels) == {"circle", "square"}
    assert sum(labels.values()) == split_records(manifest, "test", ("circle", "square"))
    with pytest.raises(DatasetError, match=r"labels \['hexagon'\] are not in the dataset"):
        split_input_spec(str(shapes_dataset), manifest, "test", DEFAULT_PARAMS, 2, keep_labels=("hexagon",))
    with pytest.raises(DatasetError, match="split 'nope' is not in"):
        split_input_spec(str(shapes_dataset), manifest, "nope", DEFAULT_PARAMS, 2)


def test_gzip_shards_read_the_same(spark, shapes_dataset, tmp_path):
    gz = tmp_path / "gz"
    manifest = read_manifest(str(shapes_dataset))
    images = shapes_dataset.parent / "images"
    convert_images(spark, ImageConvertOptions(str(images), str(gz), num_shards=2, compression="gzip"))
    gz_manifest = read_manifest(str(gz))
    plain = keys_of(eval_input_fn(split_input_spec(str(shapes_dataset), manifest, "test", DEFAULT_PARAMS, 1), 32)())
    zipped = keys_of(eval_input_fn(split_input_spec(str(gz), gz_manifest, "test", DEFAULT_PARAMS, 1), 32)())
    assert plain == zipped
    shutil.rmtree(gz)
