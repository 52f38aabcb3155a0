"""Checking and transforming one image's bytes with Pillow.

Verification levels (`--verify`): `header` reads the header and decodes only files whose end
is missing; `decode` (the default) decodes every file (a JPEG at 1/8 scale, twice: see
`_jpeg_scan_complete`), so nothing that training cannot decode gets in; `full` decodes JPEGs at
full scale too. Files training cannot decode as they are become PNG (`conversion.images.formats`).
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from conversion.images.formats import FORMATS, stored_as_png
from conversion.images.options import ImageTransform

CHANNELS = {
    "1": 1,
    "L": 1,
    "I": 1,
    "I;16": 1,
    "F": 1,
    "LA": 2,
    "P": 3,
    "PA": 4,
    "RGB": 3,
    "YCbCr": 3,
    "LAB": 3,
    "HSV": 3,
    "RGBA": 4,
    "CMYK": 4,
}
# What a complete file ends with; a file without it is decoded fully before it is accepted.
_TRAILERS = {"jpeg": b"\xff\xd9", "png": b"IEND\xaeB`\x82", "gif": b";"}
_TRAILER_WINDOW = 4096
_JPEG_EOI = b"\xff\xd9"
# Extra scan bytes: a complete scan ignores them, a short one decodes them into other pixels. Zero
# bytes do not work (libjpeg gives up on them as it does at a marker): fixed pseudo-random bytes
# without 0xFF (which would start a marker) decode into blocks.
_JPEG_PAD = bytes(b % 255 for b in hashlib.sha256(b"tfrecordpipe").digest() * 4)


class Rejected(Exception):
    """An input file that cannot become a record; `reason` is a short fixed word."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class ImageRecord:
    """The checked (and possibly transformed) image that goes into a record."""

    encoded: bytes
    format: str
    height: int
    width: int
    channels: int
    source_format: str = ""  # the file's format when it was rewritten to PNG for training, else ""


def _open(data: bytes) -> Image.Image:
    # Pillow's decompression-bomb limit stays on: over MAX_IMAGE_PIXELS warns, over twice raises;
    # both reject the file.
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            return Image.open(io.BytesIO(data))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
            raise Rejected("decompression_bomb", str(err)) from None
        except UnidentifiedImageError:
            raise Rejected("undecodable", "Pillow cannot identify an image in this file") from None
        except Exception as err:  # Pillow raises many types for damaged headers
            raise Rejected("undecodable", f"{type(err).__name__}: {err}") from None


def _decode(image: Image.Image, reason: str) -> None:
    try:
        image.load()
    except Exception as err:
        # Pillow says "image file is truncated" when the data ends before the last row.
        why = "truncated" if "truncated" in str(err) else reason
        raise Rejected(why, f"{type(err).__name__}: {err}") from None


def _jpeg_pixels(data: bytes, scaled: bool) -> bytes:
    image = _open(data)
    if scaled:  # DCT-domain 1/8 scale: every scan is still entropy-decoded, the IDCT is nearly free
        image.draft(image.mode, ((image.size[0] + 7) // 8, (image.size[1] + 7) // 8))
    _decode(image, "undecodable")
    return image.tobytes()


def _jpeg_scan_complete(data: bytes, scaled: bool) -> None:
    """Reject a JPEG whose scan data stops before its last block and is followed by an end marker.

    libjpeg (Pillow's and TensorFlow's) fills the missing blocks grey with only a warning that
    neither reports. Decoding again with padding bytes inserted before the end marker tells the
    two apart: a complete scan ignores them (same pixels), a short one decodes them (other pixels).
    """
    pixels = _jpeg_pixels(data, scaled)
    end = data.rfind(_JPEG_EOI)
    if end > 0 and _jpeg_pixels(data[:end] + _JPEG_PAD + data[end:], scaled) != pixels:
        raise Rejected(
            "truncated", "the JPEG scan data ends early (an end marker follows); decoders fill the rest grey"
        )


def _verify(data: bytes, image: Image.Image, fmt: str, level: str) -> None:
    if level == "header":
        if not _ends_complete(data, fmt):
            _decode(image, "truncated")  # header looked fine but the end is missing: decode to be sure
    elif fmt == "jpeg":
        _jpeg_scan_complete(data, scaled=level != "full")
    else:
        _decode(image, "undecodable")  # decoded once: the transforms below reuse its pixels


def _as_png(image: Image.Image) -> Image.Image:
    """The first frame in a mode PNG stores losslessly."""
    image.seek(0)
    if image.mode in ("1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16"):
        return image
    return image.convert("RGBA" if "A" in image.mode else "RGB")


def _ends_complete(data: bytes, fmt: str) -> bool:
    trailer = _TRAILERS.get(fmt)
    return trailer is None or trailer in data[-_TRAILER_WINDOW:]


def _encode(image: Image.Image, fmt: str, quality: int) -> bytes:
    out = io.BytesIO()
    if fmt == "jpeg":
        if image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        image.save(out, format="JPEG", quality=quality, optimize=False)
    else:
        if image.mode not in ("1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16"):
            image = image.convert("RGBA")
        image.save(out, format="PNG", compress_level=6)
    return out.getvalue()


def check_image(data: bytes, transform: ImageTransform) -> ImageRecord:
    """Check one file's bytes and apply the transform.

    Raises:
        Rejected: the file is empty, too large, not a supported image, a decompression bomb,
            truncated or does not decode (at the verification level asked for).
    """
    if not data:
        raise Rejected("empty", "zero-byte file")
    if len(data) > transform.max_bytes:
        raise Rejected("too_large", f"{len(data)} bytes > --max-bytes {transform.max_bytes}")
    image = _open(data)
    fmt = FORMATS.get(image.format or "")
    if fmt is None:
        raise Rejected("unsupported_format", f"{image.format} is not one of jpeg, png, gif, bmp, webp")
    _verify(data, image, fmt, transform.verify)
    if transform.resize is None and transform.reencode is None:
        width, height = image.size
        if stored_as_png(data, fmt):
            _decode(image, "undecodable")
            png = _as_png(image)
            return ImageRecord(_encode(png, "png", 0), "png", height, width, CHANNELS.get(png.mode, 3), fmt)
        return ImageRecord(data, fmt, height, width, CHANNELS.get(image.mode, 3))
    out_fmt = transform.reencode or ("jpeg" if fmt == "jpeg" else "png")
    if transform.resize is not None:
        height, width = transform.resize
        if fmt == "jpeg":
            image.draft("RGB" if image.mode != "L" else "L", (width, height))  # DCT-domain downscale first
        try:
            image = image.convert("RGBA") if image.mode == "P" else image
            image = image.resize((width, height), Image.BILINEAR, reducing_gap=None)
        except Exception as err:
            raise Rejected("undecodable", f"{type(err).__name__}: {err}") from None
    else:
        _decode(image, "undecodable")
    encoded = _encode(image, out_fmt, transform.jpeg_quality)
    final_mode = "L" if image.mode in ("1", "L") else ("RGB" if out_fmt == "jpeg" else image.mode)
    return ImageRecord(encoded, out_fmt, image.size[1], image.size[0], CHANNELS.get(final_mode, 3))
