"""ImageNet-style augmentation steps, eagerly and inside `Dataset.map`, and the training/evaluation parsers."""

from __future__ import annotations

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from dataset.errors import TrainingError
from dataset.versions import read_manifest
from tests.images import image_bytes
from training.images import augment
from training.images.model import IMAGE_PARAMS as DEFAULT_PARAMS
from training.input import eval_input_fn, train_input_fn
from training.kinds import split_input_spec

SIZE = (24, 32)


def photo(fmt: str, size: tuple[int, int] = (100, 75), mode: str = "RGB", subsampling: int = 0) -> bytes:
    """A smooth gradient image (width x height) with a little noise; JPEG chroma `subsampling` 0 is 4:4:4, 2 is 4:2:0."""
    width, height = size
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 255 // width, y * 255 // height, (x + y) * 255 // (width + height)], axis=-1)
    pixels = pixels + np.random.default_rng(0).integers(0, 8, pixels.shape)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB").convert(mode)
    out = io.BytesIO()
    image.save(out, format=fmt, **({"quality": 90, "subsampling": subsampling} if fmt == "JPEG" else {}))
    return out.getvalue()


def seed(n: int) -> tf.Tensor:
    return tf.constant([n, 7], tf.int64)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF"])
def test_random_resized_crop_eagerly_and_inside_dataset_map(fmt):
    encoded = tf.constant(photo(fmt))
    eager = augment.random_resized_crop(encoded, seed(1), SIZE, 3)
    assert eager.shape == (*SIZE, 3) and eager.dtype == tf.float32
    assert 0.0 <= float(tf.reduce_min(eager)) and float(tf.reduce_max(eager)) <= 1.0
    again = augment.random_resized_crop(encoded, seed(1), SIZE, 3)
    np.testing.assert_array_equal(again.numpy(), eager.numpy())  # same seed, same crop and flip
    other = augment.random_resized_crop(encoded, seed(2), SIZE, 3)
    assert not np.array_equal(other.numpy(), eager.numpy())
    mapped = tf.data.Dataset.from_tensors((encoded, seed(1))).map(
        lambda e, s: augment.random_resized_crop(e, s, SIZE, 3)
    )
    np.testing.assert_array_equal(next(iter(mapped)).numpy(), eager.numpy())


def test_random_crop_windows_stay_inside_and_cover_8_to_100_percent():
    shape = tf.constant([75, 100, 3])
    windows = np.array([augment.random_crop_window(shape, seed(n)).numpy() for n in range(200)])
    top, left, height, width = windows.T
    assert (top >= 0).all() and (left >= 0).all() and (top + height <= 75).all() and (left + width <= 100).all()
    area = height * width / (75 * 100)
    assert area.min() >= 0.07 and area.max() <= 1.0 and len(set(map(tuple, windows))) > 150


def test_random_flip_mirrors_half_the_time():
    image = tf.reshape(tf.range(12, dtype=tf.float32), [2, 2, 3])
    flips = [augment.random_flip(image, seed(n)).numpy() for n in range(40)]
    mirrored = [np.array_equal(f, image.numpy()[:, ::-1]) for f in flips]
    kept = [np.array_equal(f, image.numpy()) for f in flips]
    assert all(m != k for m, k in zip(mirrored, kept)) and 5 < sum(mirrored) < 35


@pytest.mark.parametrize("mode, channels", [("RGB", 3), ("L", 1), ("L", 3)])
def test_window_decoding_of_a_jpeg_equals_decode_then_crop(mode, channels):
    encoded = tf.constant(photo("JPEG", (97, 61), mode))
    full = tf.io.decode_jpeg(encoded, channels=channels).numpy()
    for window in ([0, 0, 61, 97], [5, 11, 30, 40], [17, 33, 44, 64], [60, 96, 1, 1]):
        cropped = augment.decode_window(encoded, lambda shape, w=window: tf.constant(w), channels)
        top, left, height, width = window
        np.testing.assert_array_equal(cropped.numpy(), full[top : top + height, left : left + width])


def test_window_decoding_of_a_subsampled_jpeg_differs_only_in_its_last_column():
    # 4:2:0 chroma: libjpeg-turbo upsamples the window's right edge as an image edge (at most 2 levels off).
    encoded = tf.constant(photo("JPEG", subsampling=2))
    full = tf.io.decode_jpeg(encoded, channels=3).numpy().astype(int)
    cropped = augment.decode_window(encoded, lambda shape: tf.constant([4, 6, 66, 88]), 3).numpy().astype(int)
    np.testing.assert_array_equal(cropped[:, :-1], full[4:70, 6:93])
    difference = np.abs(cropped[:, -1] - full[4:70, 93])
    assert 0 < difference.max() <= 2


def test_png_window_is_the_same_crop_of_the_decoded_image():
    encoded = tf.constant(image_bytes("PNG", (40, 30), "RGBA"))
    cropped = augment.decode_window(encoded, lambda shape: tf.constant([3, 4, 10, 20]), 3)
    np.testing.assert_array_equal(cropped.numpy(), tf.io.decode_png(encoded, channels=3).numpy()[3:13, 4:24])


def test_center_crop_takes_the_central_window_of_the_target_aspect():
    assert augment.central_crop_window(tf.constant([375, 500, 3]), (224, 224)).numpy().tolist() == [23, 86, 328, 328]
    assert augment.central_crop_window(tf.constant([100, 100, 3]), (50, 100)).numpy().tolist() == [28, 6, 44, 88]
    encoded = tf.constant(photo("JPEG", (100, 75)))
    eager = augment.center_crop(encoded, SIZE, 3)
    expected = tf.image.resize(tf.io.decode_jpeg(encoded, channels=3)[4:70, 6:94], SIZE) / 255.0
    np.testing.assert_allclose(eager.numpy(), expected.numpy(), atol=1e-6)
    mapped = tf.data.Dataset.from_tensors(encoded).map(lambda e: augment.center_crop(e, SIZE, 3))
    np.testing.assert_array_equal(next(iter(mapped)).numpy(), eager.numpy())


def test_batches_for_training_and_evaluation_by_augment():
    encoded = tf.constant([photo("JPEG"), photo("PNG", mode="L"), image_bytes("GIF", (5, 9))])
    seeds = tf.constant([[1, 2], [3, 4], [5, 6]], tf.int64)
    for name in augment.AUGMENTS:
        train = augment.train_images(encoded, seeds, SIZE, 3, name)
        evaluated = augment.eval_images(encoded, SIZE, 3, name)
        assert train.shape == evaluated.shape == (3, *SIZE, 3)
        np.testing.assert_array_equal(evaluated[1].numpy(), augment.eval_images(encoded[1:2], SIZE, 3, name)[0].numpy())
    whole = augment.whole_image(encoded[0], SIZE, 3)
    np.testing.assert_array_equal(augment.train_images(encoded, seeds, SIZE, 3, "none")[0].numpy(), whole.numpy())
    np.testing.assert_array_equal(augment.eval_images(encoded, SIZE, 3, "none")[0].numpy(), whole.numpy())
    with pytest.raises(TrainingError, match=r"augment must be one of none, imagenet, got 'random'"):
        augment.check_augment("random")


def test_training_parser_augments_and_evaluation_parser_center_crops(shapes_dataset):
    manifest = read_manifest(str(shapes_dataset))
    params = dict(DEFAULT_PARAMS, augment="imagenet", image_size=[16, 16])
    train_spec = split_input_spec(str(shapes_dataset), manifest, "train", params, 2, training=True)
    features, labels = next(iter(train_input_fn(train_spec, 8, 1, 0, 1, seed=0, shuffle_buffer=8)()))
    assert features["image"].shape == (8, 16, 16, 3) and labels.shape == (8,)
    eval_spec = split_input_spec(str(shapes_dataset), manifest, "test", params, 2)
    features, _ = next(iter(eval_input_fn(eval_spec, 4)()))
    first = tf.data.TFRecordDataset(eval_spec.files[0]).take(4)
    encoded = [
        tf.io.parse_single_example(r, manifest.tf_feature_spec(["image/encoded"]))["image/encoded"] for r in first
    ]
    expected = [augment.center_crop(e, (16, 16), 3).numpy() for e in encoded]
    np.testing.assert_array_equal(features["image"].numpy(), np.stack(expected))
    with pytest.raises(TrainingError, match="augment must be one of none, imagenet, got 'x'"):
        split_input_spec(str(shapes_dataset), manifest, "test", dict(params, augment="x"), 2)
