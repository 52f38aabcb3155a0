"""Checking single images: every rejection reason, and the transforms."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from conversion.images.check import Rejected, check_image
from conversion.images.options import ImageTransform
from tests.images import bomb_png, image_bytes

DEFAULT = ImageTransform()
HEADER = ImageTransform(verify="header")


@pytest.mark.parametrize(
    "fmt, mode, expected",
    [
        ("PNG", "RGB", ("png", 3)),
        ("PNG", "RGBA", ("png", 4)),
        ("PNG", "L", ("png", 1)),
        ("JPEG", "RGB", ("jpeg", 3)),
        ("JPEG", "L", ("jpeg", 1)),
        ("GIF", "RGB", ("gif", 3)),
        ("BMP", "RGB", ("bmp", 3)),
    ],
)
def test_accepted_images_keep_their_bytes(fmt, mode, expected):
    data = image_bytes(fmt, (12, 10), mode)
    record = check_image(data, DEFAULT)
    assert record.encoded == data
    assert (record.format, record.channels, record.width, record.height) == (*expected, 12, 10)


def _reason(data: bytes, transform: ImageTransform = DEFAULT) -> str:
    with pytest.raises(Rejected) as info:
        check_image(data, transform)
    return info.value.reason


def test_rejection_reasons():
    jpeg = image_bytes("JPEG", (64, 64))
    assert _reason(b"") == "empty"
    assert _reason(b"this is a text file, not a jpeg\n") == "undecodable"
    assert _reason(jpeg[: len(jpeg) // 2]) == "truncated"
    assert _reason(bomb_png()) == "decompression_bomb"
    assert _reason(jpeg, ImageTransform(max_bytes=100)) == "too_large"
    xbm = io.BytesIO()
    Image.new("1", (4, 4)).save(xbm, format="XBM")  # a format Pillow reads that conversion does not take
    assert _reason(xbm.getvalue()) == "unsupported_format"


def test_the_default_decodes_and_rejects_damage_inside_the_file():
    png = bytearray(image_bytes("PNG", (32, 32)))
    png[60:80] = b"\x00" * 20  # inside IDAT: the header and the IEND trailer are intact
    assert check_image(bytes(png), HEADER).format == "png"  # the cheaper level the user may choose
    assert _reason(bytes(png)) == "undecodable"
    assert _reason(bytes(png), ImageTransform(verify="full")) == "undecodable"


def test_resize_and_reencode():
    record = check_image(image_bytes("PNG", (40, 30), "RGBA"), ImageTransform(resize=(8, 16), reencode="jpeg"))
    assert (record.format, record.height, record.width, record.channels) == ("jpeg", 8, 16, 3)
    decoded = Image.open(io.BytesIO(record.encoded))
    assert (decoded.format, decoded.size, decoded.mode) == ("JPEG", (16, 8), "RGB")
    gray = check_image(image_bytes("JPEG", (40, 30), "L"), ImageTransform(resize=(5, 5)))
    assert (gray.format, gray.channels, Image.open(io.BytesIO(gray.encoded)).size) == ("jpeg", 1, (5, 5))
    png = check_image(image_bytes("GIF", (9, 9)), ImageTransform(reencode="png"))
    assert (png.format, Image.open(io.BytesIO(png.encoded)).format) == ("png", "PNG")


def test_options_are_checked():
    with pytest.raises(ValueError, match="--reencode must be one of jpeg, png"):
        ImageTransform(reencode="tiff")
    with pytest.raises(ValueError, match="--jpeg-quality must be in 1..100"):
        ImageTransform(jpeg_quality=0)
