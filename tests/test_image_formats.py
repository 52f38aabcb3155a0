"""Every record decodes in training: formats TF cannot read become PNG, damaged files are rejected.

Each case is checked against the decoder training uses,
`tf.io.decode_image(..., channels=3, expand_animations=False)` (TF 2.15).
"""

from __future__ import annotations

import io
import json
import struct
import zlib

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from conversion.images.check import Rejected, check_image
from conversion.images.convert import convert_images
from conversion.images.options import ImageConvertOptions, ImageTransform
from dataset.versions import read_manifest
from tests.images import bmp_bytes, write

RNG = np.random.default_rng(3)
PIXELS = RNG.integers(0, 256, (12, 10, 3), dtype=np.uint8)
INDICES = RNG.integers(0, 16, (12, 10), dtype=np.uint8)


def _save(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def _tf_decode(data: bytes) -> np.ndarray:
    return tf.io.decode_image(data, channels=3, expand_animations=False).numpy()


def _pillow_rgb(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


RGB = Image.fromarray(PIXELS)
OTHER = Image.fromarray(255 - PIXELS)
# name → (file bytes, the stored image/format, the original format when stored as PNG, "")
KEPT = {
    "jpeg": _save(RGB, "JPEG"),
    "jpeg grey": _save(RGB.convert("L"), "JPEG"),
    "jpeg cmyk": _save(RGB.convert("CMYK"), "JPEG"),
    "jpeg progressive": _save(RGB, "JPEG", progressive=True),
    "png": _save(RGB, "PNG"),
    "png 1-bit": _save(RGB.convert("1"), "PNG"),
    "png grey+alpha": _save(RGB.convert("LA"), "PNG"),
    "png palette with transparency": _save(RGB.convert("P"), "PNG", transparency=0),
    "png 16-bit": _save(Image.fromarray(PIXELS[:, :, 0].astype(np.uint16) * 257).convert("I;16"), "PNG"),
    "gif": _save(RGB.convert("P"), "GIF"),
    "gif animated": _save(RGB.convert("P"), "GIF", save_all=True, append_images=[OTHER.convert("P")]),
    "bmp 24-bit": _save(RGB, "BMP"),
    "bmp 32-bit": _save(RGB.convert("RGBA"), "BMP"),
}
TO_PNG = {
    "webp lossy": _save(RGB, "WEBP", quality=80),
    "webp lossless": _save(RGB, "WEBP", lossless=True),
    "webp animated": _save(RGB, "WEBP", lossless=True, save_all=True, append_images=[OTHER]),
    "bmp 1-bit": _save(RGB.convert("1"), "BMP"),
    "bmp 4-bit": bmp_bytes(4, INDICES),
    "bmp 8-bit palette": _save(RGB.convert("P"), "BMP"),
    "bmp 8-bit grey": _save(RGB.convert("L"), "BMP"),  # TF reads it right, but only for a grey palette
    "bmp 8-bit rle": bmp_bytes(8, INDICES, compression=1),
    "bmp 16-bit": bmp_bytes(16, PIXELS),
}


@pytest.mark.parametrize("name", sorted(KEPT))
def test_formats_training_decodes_are_kept_as_they_are(name):
    data = KEPT[name]
    record = check_image(data, ImageTransform())
    assert record.encoded == data and record.source_format == ""
    assert record.format == name.split()[0]
    assert _tf_decode(record.encoded).shape == (12, 10, 3)


@pytest.mark.parametrize("name", sorted(TO_PNG))
def test_formats_training_cannot_decode_are_stored_as_lossless_png(name):
    data = TO_PNG[name]
    if name == "bmp 8-bit grey":
        np.testing.assert_array_equal(_tf_decode(data), _pillow_rgb(data))
    elif name != "bmp 8-bit palette":
        with pytest.raises(tf.errors.InvalidArgumentError):
            _tf_decode(data)  # what training would have met
    else:  # TF reads the palette indices as grey levels: no error, wrong pixels
        assert not np.array_equal(_tf_decode(data), _pillow_rgb(data))
    record = check_image(data, ImageTransform())
    assert (record.format, record.source_format, record.height, record.width) == ("png", name.split()[0], 12, 10)
    assert Image.open(io.BytesIO(record.encoded)).format == "PNG"
    np.testing.assert_array_equal(_tf_decode(record.encoded), _pillow_rgb(data))  # the first frame, losslessly


def _reason(data: bytes, verify: str = "decode") -> str:
    with pytest.raises(Rejected) as info:
        check_image(data, ImageTransform(verify=verify))
    return info.value.reason


def _corrupt_idat(png: bytes, fix_crc: bool) -> bytes:
    start = png.index(b"IDAT")
    length = struct.unpack(">I", png[start - 4 : start])[0]
    data = bytearray(png)
    middle = start + 4 + length // 2
    data[middle : middle + 8] = bytes(b ^ 0xFF for b in data[middle : middle + 8])
    if fix_crc:
        crc = zlib.crc32(bytes(data[start : start + 4 + length]))
        data[start + 4 + length : start + 8 + length] = struct.pack(">I", crc)
    return bytes(data)


@pytest.mark.parametrize("fix_crc", [False, True])
def test_a_png_with_corrupt_pixel_data_is_rejected_by_default(fix_crc):
    png = _corrupt_idat(_save(Image.fromarray(np.tile(PIXELS, (6, 6, 1))), "PNG"), fix_crc)
    with pytest.raises(tf.errors.InvalidArgumentError, match="Invalid PNG data"):
        _tf_decode(png)
    assert _reason(png) == "undecodable"
    assert _reason(png, "full") == "undecodable"
    assert check_image(png, ImageTransform(verify="header")).format == "png"  # the cheaper level lets it through


@pytest.mark.parametrize("progressive", [False, True])
def test_a_jpeg_cut_in_its_scan_data_with_an_end_marker_is_rejected(progressive):
    big = Image.fromarray(np.tile(PIXELS, (6, 6, 1)))
    jpeg = _save(big, "JPEG", quality=90, progressive=progressive)
    scan = jpeg.rindex(b"\xff\xda")
    for tenths in range(1, 10):
        cut = jpeg[: scan + (len(jpeg) - scan) * tenths // 10] + b"\xff\xd9"
        assert _tf_decode(cut).shape == (72, 60, 3)  # training would read it, partly grey, without an error
        assert _reason(cut) == "truncated", tenths
        assert _reason(cut, "full") == "truncated", tenths
    assert _reason(jpeg[: len(jpeg) // 2]) == "truncated"  # cut without an end marker


def test_complete_jpegs_pass_the_scan_check():
    grey = _save(Image.new("RGB", (64, 64), (128, 128, 128)), "JPEG")  # what a grey fill looks like
    baseline = _save(RGB, "JPEG")
    for data in (grey, baseline, baseline + b"trailing bytes after the end marker"):
        for verify in ("decode", "full"):
            assert check_image(data, ImageTransform(verify=verify)).encoded == data


def test_conversion_reports_rejected_and_converted_formats(spark, tmp_path):
    png = _save(Image.fromarray(np.tile(PIXELS, (6, 6, 1))), "PNG")
    jpeg = _save(Image.fromarray(np.tile(PIXELS, (6, 6, 1))), "JPEG")
    scan = jpeg.rindex(b"\xff\xda")
    files = {
        "a/photo.webp": TO_PNG["webp lossy"],
        "a/icon.bmp": TO_PNG["bmp 1-bit"],
        "a/anim.webp": TO_PNG["webp animated"],
        "a/ok.png": png,
        "b/ok.jpg": jpeg,
        "b/ok.bmp": KEPT["bmp 24-bit"],
        "b/corrupt.png": _corrupt_idat(png, fix_crc=True),
        "b/cut.jpg": jpeg[: scan + (len(jpeg) - scan) // 2] + b"\xff\xd9",
    }
    for relpath, data in files.items():
        write(tmp_path / "in", relpath, data)
    out = tmp_path / "out"
    summary = convert_images(spark, ImageConvertOptions(str(tmp_path / "in"), str(out), max_reject_fraction=0.5))
    report = [json.loads(line) for line in (out / "_rejected" / "rejected.jsonl").read_text().splitlines()]
    assert [(r["path"], r["reason"]) for r in report] == [("b/corrupt.png", "undecodable"), ("b/cut.jpg", "truncated")]
    manifest = read_manifest(str(out))
    assert manifest.num_converted_formats == {"bmp": 1, "webp": 2}
    assert summary.converted == {"bmp": 1, "webp": 2}
    assert "  stored as PNG (training cannot decode the original): bmp 1, webp 2" in summary.text().splitlines()
    assert json.loads((out / "manifest.json").read_text())["options"]["transform"]["verify"] == "decode"
    decoded = 0
    for split in manifest.splits.values():
        for shard in split.files:
            for serialized in tf.data.TFRecordDataset(str(out / shard.path)):
                example = tf.train.Example.FromString(serialized.numpy()).features.feature
                name = example["image/filename"].bytes_list.value[0].decode()
                stored = example["image/format"].bytes_list.value[0].decode()
                assert stored == {"webp": "png", "bmp": "png" if name == "a/icon.bmp" else "bmp"}.get(
                    name.rsplit(".", 1)[1], name.rsplit(".", 1)[1].replace("jpg", "jpeg")
                )
                assert _tf_decode(example["image/encoded"].bytes_list.value[0]).shape == (
                    example["image/height"].int64_list.value[0],
                    example["image/width"].int64_list.value[0],
                    3,
                )
                decoded += 1
    assert decoded == 6
