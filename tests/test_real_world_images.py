"""Classes of real-world image files where Pillow and TensorFlow disagree, made in code.

Each case is checked against the decoder training uses, `tf.io.decode_image(..., channels=3,
expand_animations=False)` (TF 2.15): what conversion accepts, training decodes, to the pixels a viewer
(Pillow, with the EXIF orientation applied) shows.
"""

from __future__ import annotations

import io
import json
import struct
import warnings

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageOps

from conversion.images.check import Rejected, check_image
from conversion.images.convert import convert_images
from conversion.images.options import ImageConvertOptions, ImageTransform
from conversion.images.writer import ShardJob, checked
from dataset.check import validate_dataset
from dataset.versions import read_manifest
from tests.images import (
    gif_bytes,
    gif_frame,
    lossless_jpeg_bytes,
    png_chunks,
    png_of_chunks,
    qoi_bytes,
    save,
    with_orientation,
    write,
)

RNG = np.random.default_rng(22)
PIXELS = RNG.integers(0, 256, (23, 37, 3), dtype=np.uint8)  # sizes that are no multiple of a JPEG block
RGB = Image.fromarray(PIXELS)
PALETTE = bytes([255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255])
INDICES = RNG.integers(0, 4, 48).tolist()
DEFAULT = ImageTransform()


def _scene(width: int, height: int) -> np.ndarray:
    """Smooth colours with a little noise: what a photo looks like to a JPEG encoder."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    smooth = np.stack([np.sin(x / 9), np.cos(y / 7), np.sin((x + y) / 11)], axis=-1) * 90 + 128
    return np.clip(smooth + RNG.normal(0, 4, smooth.shape), 0, 255).astype(np.uint8)


# A JPEG turned upright is re-encoded: TF's decode of the record against Pillow's upright decode of the
# original differs by (mean absolute difference, largest) at most these, measured over orientations 2-8 of
# these scenes at quality 90. TF's and Pillow's decoders alone differ by a mean of 1.0 (max 3) here. Sizes
# that are a multiple of the 16-pixel block keep the block grid (mean 1.2); others move it (mean 2.1).
JPEG_TOLERANCE = {(64, 48): (1.5, 8), (37, 23): (2.5, 16)}


def _tf_decode(data: bytes) -> np.ndarray:
    return tf.io.decode_image(data, channels=3, expand_animations=False).numpy()


def _tf_refuses(data: bytes) -> bool:
    try:
        _tf_decode(data)
    except tf.errors.InvalidArgumentError:
        return True
    return False


def _pillow_rgb(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def _reason(data: bytes, transform: ImageTransform = DEFAULT) -> tuple[str, str]:
    with pytest.raises(Rejected) as info:
        check_image(data, transform)
    return info.value.reason, info.value.detail


# GIF ---------------------------------------------------------------------------------------------------------


def test_a_gif_without_any_colour_table_is_rejected_with_its_reason():
    data = gif_bytes((8, 6), [gif_frame(INDICES, (8, 6))])
    assert np.asarray(Image.open(io.BytesIO(data))).shape == (6, 8)  # Pillow decodes it (greyscale)...
    assert _tf_refuses(data)  # ...training cannot
    assert _reason(data) == (
        "no_color_table",
        "GIF without a colour table (global or local): its colours are undefined and TensorFlow refuses it",
    )
    assert _reason(data, ImageTransform(verify="header"))[0] == "no_color_table"


def test_a_gif_index_beyond_its_colour_table_is_rejected():
    data = gif_bytes((8, 6), [gif_frame(INDICES, (8, 6))], PALETTE[:6])  # 2 colours, indices up to 3
    assert _tf_refuses(data)
    assert _reason(data) == ("undecodable", "GIF colour index 3 beyond its colour table of 2 colours")


@pytest.mark.parametrize(
    "name, data",
    [
        ("global table", gif_bytes((8, 6), [gif_frame(INDICES, (8, 6))], PALETTE)),
        ("local table only", gif_bytes((8, 6), [gif_frame(INDICES, (8, 6), local=PALETTE)])),
        ("frame larger than the screen", gif_bytes((4, 3), [gif_frame(INDICES, (8, 6))], PALETTE)),
        ("interlaced (Pillow)", save(RGB.convert("P"), "GIF", interlace=True)),
    ],
)
def test_gifs_training_reads_as_a_viewer_keep_their_bytes(name, data):
    record = check_image(data, DEFAULT)
    assert (record.encoded, record.format, record.source_format) == (data, "gif", "")
    np.testing.assert_array_equal(_tf_decode(data), _pillow_rgb(data))


@pytest.mark.parametrize(
    "name, data",
    [
        ("frame inside the screen, offset", gif_bytes((8, 6), [gif_frame(INDICES[:12], (4, 3), (2, 1))], PALETTE)),
        ("frame past the screen's edge", gif_bytes((8, 6), [gif_frame(INDICES[:12], (4, 3), (6, 0))], PALETTE)),
        (
            "a later frame larger than the first",
            gif_bytes((4, 3), [gif_frame(INDICES[:12], (4, 3)), gif_frame(INDICES, (8, 6))], PALETTE),
        ),
    ],
)
def test_gifs_training_would_draw_otherwise_are_stored_as_png_of_the_viewers_pixels(name, data):
    viewer = _pillow_rgb(data)
    assert _tf_decode(data).shape != viewer.shape  # TF's canvas is the largest frame, not the screen
    record = check_image(data, DEFAULT)
    assert (record.format, record.source_format, record.height, record.width) == ("png", "gif", *viewer.shape[:2])
    np.testing.assert_array_equal(_tf_decode(record.encoded), viewer)


def test_gif_transparency_decodes_black_kept_or_converted():
    kept = gif_bytes((8, 6), [gif_frame(INDICES, (8, 6), transparent=0)], PALETTE)
    offset = gif_bytes((8, 6), [gif_frame(INDICES[:12], (4, 3), (2, 1), transparent=0)], PALETTE)
    assert check_image(kept, DEFAULT).encoded == kept
    black = np.array(INDICES).reshape(6, 8) == 0
    assert (_tf_decode(kept)[black] == 0).all() and (_pillow_rgb(kept)[black] == (255, 0, 0)).all()
    record = check_image(offset, DEFAULT)
    stored = np.asarray(Image.open(io.BytesIO(record.encoded)))
    assert stored.shape == (6, 8, 4)
    transparent = stored[:, :, 3] == 0
    assert transparent.sum() == 48 - 12 + (np.array(INDICES[:12]) == 0).sum()  # outside the frame, and index 0
    assert (stored[transparent] == 0).all() and (_tf_decode(record.encoded)[transparent] == 0).all()


# PNG and JPEG ------------------------------------------------------------------------------------------------


def test_a_png_without_iend_is_stored_as_png_of_its_pixels():
    png = save(RGB, "PNG")
    cut = png_of_chunks(png_chunks(png)[:-1])
    assert _tf_refuses(cut)
    record = check_image(cut, DEFAULT)
    assert (record.format, record.source_format) == ("png", "png")
    np.testing.assert_array_equal(_tf_decode(record.encoded), PIXELS)


def test_a_png_whose_idat_crc_does_not_match_is_rejected():
    png = bytearray(save(RGB, "PNG"))
    at = png.index(b"IDAT")
    length = struct.unpack(">I", png[at - 4 : at])[0]
    png[at + 4 + length] ^= 1  # the CRC only: Pillow decodes the pixels, libpng refuses the chunk
    np.testing.assert_array_equal(_pillow_rgb(bytes(png)), PIXELS)
    assert _tf_refuses(bytes(png))
    assert _reason(bytes(png)) == ("undecodable", "PNG IDAT chunk fails its CRC check: the file is damaged")


@pytest.mark.parametrize("verify", ["header", "decode", "full"])
def test_a_lossless_jpeg_is_stored_as_png_of_its_pixels(verify):
    grey = PIXELS[:, :, 1]
    data = lossless_jpeg_bytes(grey)
    assert _tf_refuses(data)  # TF's libjpeg-turbo 2.1 has no lossless mode; Pillow's 3.0 has
    record = check_image(data, ImageTransform(verify=verify))
    assert (record.format, record.source_format, record.channels) == ("png", "jpeg", 1)
    np.testing.assert_array_equal(_tf_decode(record.encoded), np.repeat(grey[:, :, None], 3, axis=2))
    resized = check_image(data, ImageTransform(verify=verify, resize=(10, 20)))
    assert (resized.format, resized.height, resized.width) == ("png", 10, 20)


def test_a_12_bit_jpeg_is_rejected():
    jpeg = save(RGB, "JPEG")
    at = jpeg.index(b"\xff\xc0")
    twelve = jpeg[: at + 4] + bytes([12]) + jpeg[at + 5 :]
    assert _tf_refuses(twelve)
    assert _reason(twelve)[0] == "undecodable"


# EXIF orientation --------------------------------------------------------------------------------------------


def _upright(data: bytes) -> np.ndarray:
    return np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))


@pytest.mark.parametrize("size", sorted(JPEG_TOLERANCE))
@pytest.mark.parametrize("orientation", range(2, 9))
def test_a_jpeg_with_an_orientation_is_stored_upright(orientation, size):
    data = with_orientation(Image.fromarray(_scene(*size)), "JPEG", orientation, quality=90)
    upright = _upright(data)
    record = check_image(data, DEFAULT)
    assert (record.format, record.turned, record.orientation) == ("jpeg", orientation, None)
    assert (record.height, record.width) == upright.shape[:2]
    decoded = _tf_decode(record.encoded)
    assert decoded.shape == upright.shape
    difference = np.abs(decoded.astype(int) - upright)
    mean, largest = JPEG_TOLERANCE[size]
    assert difference.mean() < mean and difference.max() <= largest
    assert abs(len(record.encoded) - len(data)) < 0.1 * len(data)  # its own tables: about the same size
    assert Image.open(io.BytesIO(record.encoded)).getexif().get(0x0112) is None  # no tag to turn it again


@pytest.mark.parametrize("lossless", [True, False])
@pytest.mark.parametrize("orientation", range(2, 9))
def test_a_webp_with_an_orientation_is_stored_upright_losslessly(orientation, lossless):
    data = with_orientation(RGB, "WEBP", orientation, lossless=lossless)
    record = check_image(data, DEFAULT)
    assert (record.format, record.source_format, record.turned) == ("png", "webp", orientation)
    np.testing.assert_array_equal(_tf_decode(record.encoded), _upright(data))


def test_a_png_with_an_orientation_is_turned_losslessly():
    data = with_orientation(RGB, "PNG", 6)
    record = check_image(data, DEFAULT)
    assert (record.format, record.source_format, record.turned, record.height, record.width) == ("png", "", 6, 37, 23)
    np.testing.assert_array_equal(_tf_decode(record.encoded), np.rot90(PIXELS, -1))


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
def test_orientation_1_or_absent_keeps_the_bytes(fmt):
    for data in (save(RGB, fmt), with_orientation(RGB, fmt, 1)):
        record = check_image(data, DEFAULT)
        assert record.turned == 1
        if fmt == "JPEG":
            assert record.encoded == data


def test_keep_orientation_keeps_the_bytes_and_records_the_tag():
    data = with_orientation(RGB, "JPEG", 6)
    record = check_image(data, ImageTransform(keep_orientation=True))
    assert (record.encoded, record.turned, record.orientation, record.height, record.width) == (data, 1, 6, 23, 37)
    plain = save(RGB, "JPEG")
    assert check_image(plain, ImageTransform(keep_orientation=True)).orientation == 1


def test_resize_turns_before_it_resizes():
    data = with_orientation(RGB, "PNG", 8)
    record = check_image(data, ImageTransform(resize=(20, 10)))
    assert (record.format, record.height, record.width, record.turned) == ("png", 20, 10, 8)
    expected = np.asarray(Image.fromarray(np.rot90(PIXELS)).resize((10, 20), Image.BILINEAR, reducing_gap=None))
    np.testing.assert_array_equal(_tf_decode(record.encoded), expected)
    jpeg = with_orientation(RGB, "JPEG", 6, quality=95)
    record = check_image(jpeg, ImageTransform(reencode="png"))
    assert (record.format, record.height, record.width) == ("png", 37, 23)
    np.testing.assert_array_equal(_tf_decode(record.encoded), _upright(jpeg))


# Formats Pillow reads and TF does not ------------------------------------------------------------------------


def _cursor() -> bytes:
    """A cursor (Pillow reads, cannot write): an icon of BMP images whose type field says 2."""
    data = bytearray(save(RGB.convert("RGBA").resize((32, 32)), "ICO", sizes=[(32, 32)], bitmap_format="bmp"))
    data[2] = 2
    return bytes(data)


GREY16 = (np.arange(23 * 37, dtype=np.uint32).reshape(23, 37) * 71 % 65536).astype(np.uint16)


OTHER_FORMATS = dict(
    [
        ("tiff", save(RGB, "TIFF")),
        ("tiff lzw", save(RGB, "TIFF", compression="tiff_lzw")),
        ("tiff deflate rgba", save(RGB.convert("RGBA"), "TIFF", compression="tiff_adobe_deflate")),
        ("tiff 1-bit group 4", save(RGB.convert("1"), "TIFF", compression="group4")),
        ("tiff jpeg", save(RGB, "TIFF", compression="jpeg")),
        ("tiff palette", save(RGB.convert("P"), "TIFF")),
        ("tga", save(RGB, "TGA")),
        ("tga rle", save(RGB, "TGA", compression="tga_rle")),
        ("ppm", save(RGB, "PPM")),
        ("pgm", save(RGB.convert("L"), "PPM")),
        ("pbm", save(RGB.convert("1"), "PPM")),
        ("pcx", save(RGB, "PCX")),
        ("sgi", save(RGB, "SGI")),
        ("qoi", qoi_bytes(PIXELS)),
        ("dds", save(RGB.convert("RGBA"), "DDS")),
        ("dib", save(RGB, "DIB")),
        ("jpeg2000 lossless", save(RGB, "JPEG2000")),
        ("ico", save(RGB, "ICO", sizes=[(37, 23)])),
        ("cur", _cursor()),
    ]
)


@pytest.mark.parametrize("name", sorted(OTHER_FORMATS))
def test_formats_pillow_reads_are_stored_as_png_of_their_pixels(name):
    data = OTHER_FORMATS[name]
    pillow = Image.open(io.BytesIO(data))
    record = check_image(data, DEFAULT)
    assert (record.format, record.source_format) == ("png", pillow.format.lower().replace("ppm", "pnm"))
    stored = Image.open(io.BytesIO(record.encoded))
    np.testing.assert_array_equal(np.asarray(stored), np.asarray(pillow))  # lossless, alpha kept
    np.testing.assert_array_equal(_tf_decode(record.encoded), np.asarray(pillow.convert("RGB")))


def test_sixteen_bit_greyscale_stays_sixteen_bit():
    for data in (save(Image.fromarray(GREY16), "TIFF"), save(Image.fromarray(GREY16).convert("I"), "PPM")):
        record = check_image(data, DEFAULT)
        stored = Image.open(io.BytesIO(record.encoded))
        assert (record.format, stored.mode, record.channels) == ("png", "I;16", 1)
        np.testing.assert_array_equal(np.asarray(stored), GREY16)
        np.testing.assert_array_equal(_tf_decode(record.encoded)[:, :, 0], GREY16 >> 8)  # what training sees


def test_a_multi_page_tiff_stores_its_first_page_and_counts_its_pages():
    data = save(RGB, "TIFF", save_all=True, append_images=[Image.fromarray(255 - PIXELS)])
    record = check_image(data, DEFAULT)
    assert (record.format, record.source_format, record.frames) == ("png", "tiff", 2)
    np.testing.assert_array_equal(_tf_decode(record.encoded), PIXELS)


def test_an_icon_stores_its_largest_size():
    data = save(RGB.resize((32, 32)), "ICO", sizes=[(16, 16), (32, 32)])
    record = check_image(data, DEFAULT)
    assert (record.height, record.width) == (32, 32)


def test_a_tiff_with_an_orientation_is_turned():
    data = with_orientation(RGB, "TIFF", 3)
    record = check_image(data, DEFAULT)
    np.testing.assert_array_equal(_tf_decode(record.encoded), PIXELS[::-1, ::-1])


def test_pixels_a_png_cannot_hold_are_rejected():
    floats = save(Image.fromarray(PIXELS[:, :, 0].astype(np.float32) / 7), "TIFF")
    assert _reason(floats) == ("unsupported_pixels", "floating-point pixels: a PNG cannot hold them faithfully")


# Pillow's warnings -------------------------------------------------------------------------------------------


def _invalid_apng() -> bytes:
    """A PNG with an acTL chunk claiming 0 frames: Pillow warns "Invalid APNG", both decoders read it."""
    chunks = png_chunks(save(RGB, "PNG"))
    return png_of_chunks(chunks[:1] + [(b"acTL", struct.pack(">II", 0, 0))] + chunks[1:])


def test_pillow_warnings_are_carried_back_not_printed():
    job = ShardJob("in", "out", ("a",), DEFAULT)
    with warnings.catch_warnings(record=True) as escaped:
        warnings.simplefilter("always")
        image, said = checked(_invalid_apng(), job)
        rejected, said_too = checked(save(RGB, "TIFF")[:40], job)
    assert escaped == []
    assert image.format == "png" and said == ["UserWarning: Invalid APNG, will use default PNG image if possible"]
    assert isinstance(rejected, Rejected)
    assert said_too == ["UserWarning: Corrupt EXIF data.  Expecting to read 12 bytes but only got 6. "]


def test_conversion_counts_what_it_turned_converted_and_heard(spark, tmp_path, capfd):
    files = {
        "a/anim.gif": gif_bytes((4, 3), [gif_frame(INDICES[:12], (4, 3)), gif_frame(INDICES, (8, 6))], PALETTE),
        "a/nocolours.gif": gif_bytes((8, 6), [gif_frame(INDICES, (8, 6))]),
        "a/pages.tif": save(RGB, "TIFF", save_all=True, append_images=[Image.fromarray(255 - PIXELS)]),
        "a/phone.jpg": with_orientation(RGB, "JPEG", 6),
        "b/apng.png": _invalid_apng(),
        "b/cut.tif": save(RGB, "TIFF")[:40],
        "b/photo.webp": with_orientation(RGB, "WEBP", 8, lossless=True),
        "b/scan.pgm": save(Image.fromarray(GREY16).convert("I"), "PPM"),
        "b/notes.txt": b"not an image",
    }
    for relpath, data in files.items():
        write(tmp_path / "in", relpath, data)
    out = tmp_path / "out"
    options = ImageConvertOptions(str(tmp_path / "in"), str(out), max_reject_fraction=0.5)
    summary = convert_images(spark, options)
    report = [json.loads(line) for line in (out / "_rejected" / "rejected.jsonl").read_text().splitlines()]
    assert [(r["path"], r["reason"]) for r in report] == [
        ("a/nocolours.gif", "no_color_table"),
        ("b/cut.tif", "undecodable"),
        ("b/notes.txt", "unsupported_extension"),
    ]
    assert report[1]["detail"] == (
        "Pillow cannot identify an image in this file; "
        "Pillow warned: UserWarning: Corrupt EXIF data.  Expecting to read 12 bytes but only got 6. "
    )
    text = summary.text().splitlines()
    assert "  stored as PNG (training cannot decode the original): gif 1, pnm 1, tiff 1, webp 1" in text
    assert "  turned upright by their EXIF orientation: jpeg 1, webp 1" in text
    assert "  several frames or pages, the first stored: gif 1, tiff 1" in text
    assert "  Pillow warned on 1 files written:" in text
    assert "    1 x UserWarning: Invalid APNG, will use default PNG image if possible (first: b/apng.png)" in text
    assert "Invalid APNG" not in capfd.readouterr().err
    assert read_manifest(str(out)).num_converted_formats == {"gif": 1, "pnm": 1, "tiff": 1, "webp": 1}
    assert validate_dataset(str(out)).num_decoded == 6


def test_keep_orientation_writes_the_feature_and_declares_it(spark, tmp_path):
    write(tmp_path / "in", "a/turned.jpg", with_orientation(RGB, "JPEG", 6))
    write(tmp_path / "in", "a/plain.jpg", save(RGB, "JPEG"))
    write(tmp_path / "in", "b/plain.png", save(RGB, "PNG"))
    out = tmp_path / "out"
    options = ImageConvertOptions(
        str(tmp_path / "in"), str(out), transform=ImageTransform(keep_orientation=True), splits=(("train", 1.0),)
    )
    convert_images(spark, options)
    manifest = read_manifest(str(out))
    assert manifest.features["image/orientation"].dtype == "int64"
    found = {}
    for shard in manifest.splits["train"].files:
        for serialized in tf.data.TFRecordDataset(str(out / shard.path)):
            feature = tf.train.Example.FromString(serialized.numpy()).features.feature
            name = feature["image/filename"].bytes_list.value[0].decode()
            found[name] = (
                feature["image/orientation"].int64_list.value[0],
                feature["image/height"].int64_list.value[0],
            )
    assert found == {"a/turned.jpg": (6, 23), "a/plain.jpg": (1, 23), "b/plain.png": (1, 23)}
    assert validate_dataset(str(out)).num_records == 3
