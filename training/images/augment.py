"""Image augmentation: ImageNet-style random resized crop and flip for training, centre crop for evaluation.

The `augment` hyper-parameter picks the preprocessing of a dataset:

* "none" (the default, for small images such as the 32x32 demo): decode and resize the whole image,
  for training, evaluation and serving alike;
* "imagenet" (for photos larger than the model's input): training decodes a random window (8-100 %
  of the area, aspect ratio 3/4-4/3) and flips it left-right at random; evaluation and serving
  decode the central 87.5 % window of the target's aspect ratio. Both resize to `image_size`.

For JPEG bytes only the window is decoded (`decode_and_crop_jpeg` on the shape read from the header
by `extract_jpeg_shape`); other formats are decoded whole, then cropped. Randomness is stateless:
each step takes an explicit seed, so the same seed gives the same crop, eagerly or in `Dataset.map`.
"""

from __future__ import annotations

import tensorflow as tf

from dataset.errors import TrainingError
from training.images.preprocess import decode, normalize, resize

AUGMENTS = ("none", "imagenet")
AREA_RANGE = (0.08, 1.0)  # of the image, for the random crop
ASPECT_RANGE = (3 / 4, 4 / 3)
CROP_ATTEMPTS = 10  # windows tried before the whole image is taken
CENTRAL_FRACTION = 0.875  # the evaluation crop: 224 of 256, as ResNet evaluates ImageNet
JPEG_MAGIC = b"\xff\xd8\xff"


def check_augment(name: str) -> str:
    """`name` if it is a known augmentation.

    Raises:
        TrainingError: it is not one of AUGMENTS.
    """
    if name not in AUGMENTS:
        raise TrainingError(f"augment must be one of {', '.join(AUGMENTS)}, got {name!r}")
    return name


def is_jpeg(encoded: tf.Tensor) -> tf.Tensor:
    """Whether the bytes are a JPEG (by their magic number, so it works for serving's raw bytes too)."""
    return tf.equal(tf.strings.substr(encoded, 0, 3), JPEG_MAGIC)


def random_crop_window(shape: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """A random window [top, left, height, width] of an image of `shape` [height, width, ...].

    Inception's distorted bounding box: 8-100 % of the area, aspect ratio 3/4-4/3, the whole
    image when no window fits in CROP_ATTEMPTS tries.
    """
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.stack([shape[0], shape[1], 1]),
        bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
        seed=seed,
        min_object_covered=0.1,
        aspect_ratio_range=ASPECT_RANGE,
        area_range=AREA_RANGE,
        max_attempts=CROP_ATTEMPTS,
        use_image_if_no_bounding_boxes=True,
    )
    return tf.stack([begin[0], begin[1], size[0], size[1]])


def central_crop_window(shape: tf.Tensor, size: tuple[int, int]) -> tf.Tensor:
    """The centred window [top, left, height, width] of `size`'s aspect ratio, CENTRAL_FRACTION of the image."""
    height, width = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
    scale = CENTRAL_FRACTION * tf.minimum(height / size[0], width / size[1])
    crop_h = tf.clip_by_value(tf.cast(tf.round(size[0] * scale), tf.int32), 1, tf.cast(shape[0], tf.int32))
    crop_w = tf.clip_by_value(tf.cast(tf.round(size[1] * scale), tf.int32), 1, tf.cast(shape[1], tf.int32))
    top = (tf.cast(shape[0], tf.int32) - crop_h) // 2
    left = (tf.cast(shape[1], tf.int32) - crop_w) // 2
    return tf.stack([top, left, crop_h, crop_w])


def decode_window(encoded: tf.Tensor, window_of, channels: int) -> tf.Tensor:
    """Decode the window `window_of(shape)` of the image: JPEGs decode only the window.

    Args:
        encoded: the encoded image (a scalar string).
        window_of: image shape [height, width, ...] → window [top, left, height, width] (int32).
        channels: channels of the result.

    Returns:
        uint8 [window height, window width, channels].
    """

    def jpeg() -> tf.Tensor:
        window = window_of(tf.io.extract_jpeg_shape(encoded))
        return tf.image.decode_and_crop_jpeg(encoded, window, channels=channels)

    def other() -> tf.Tensor:
        image = decode(encoded, channels)
        window = window_of(tf.shape(image))
        return image[window[0] : window[0] + window[2], window[1] : window[1] + window[3]]

    image = tf.cond(is_jpeg(encoded), jpeg, other)
    image.set_shape([None, None, channels])
    return image


def random_flip(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Mirrored left-right with probability 1/2."""
    return tf.image.stateless_random_flip_left_right(image, seed)


def random_resized_crop(encoded: tf.Tensor, seed: tf.Tensor, size: tuple[int, int], channels: int) -> tf.Tensor:
    """Training: a random window, flipped at random, resized to `size`; float32 in [0, 1]."""
    seeds = tf.random.experimental.stateless_split(seed, 2)
    crop = decode_window(encoded, lambda shape: random_crop_window(shape, seeds[0]), channels)
    return normalize(random_flip(resize(crop, size), seeds[1]))


def center_crop(encoded: tf.Tensor, size: tuple[int, int], channels: int) -> tf.Tensor:
    """Evaluation and serving: the central window resized to `size`; float32 in [0, 1]."""
    crop = decode_window(encoded, lambda shape: central_crop_window(shape, size), channels)
    return normalize(resize(crop, size))


def whole_image(encoded: tf.Tensor, size: tuple[int, int], channels: int) -> tf.Tensor:
    """No augmentation: the whole image resized to `size`; float32 in [0, 1]."""
    return normalize(resize(decode(encoded, channels), size))


def train_images(encoded: tf.Tensor, seeds: tf.Tensor, size: tuple[int, int], channels: int, augment: str) -> tf.Tensor:
    """A batch [B] of encoded images and seeds [B, 2] → float32 [B, height, width, channels] for training."""
    out = tf.TensorSpec([*size, channels], tf.float32)
    if augment == "imagenet":
        return tf.map_fn(
            lambda x: random_resized_crop(x[0], x[1], size, channels), (encoded, seeds), fn_output_signature=out
        )
    return tf.map_fn(lambda x: whole_image(x, size, channels), encoded, fn_output_signature=out)


def eval_images(encoded: tf.Tensor, size: tuple[int, int], channels: int, augment: str) -> tf.Tensor:
    """A batch [B] of encoded images → float32 [B, height, width, channels] for evaluation and serving."""
    one = (
        (lambda x: center_crop(x, size, channels))
        if augment == "imagenet"
        else (lambda x: whole_image(x, size, channels))
    )
    return tf.map_fn(one, encoded, fn_output_signature=tf.TensorSpec([*size, channels], tf.float32))
