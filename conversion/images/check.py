"""Checking and transforming one image's bytes with Pillow (header check by default)."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from conversion.images.options import ImageTransform

# Pillow's format name → the name stored in image/format.
FORMATS = {"JPEG": "jpeg", "MPO": "jpeg", "PNG": "png", "GIF": "gif", "BMP": "bmp", "WEBP": "webp"}
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
        raise Rejected(reason, f"{type(err).__name__}: {err}") from None


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
            truncated or (with verify="full") does not decode.
    """
    if not data:
        raise Rejected("empty", "zero-byte file")
    if len(data) > transform.max_bytes:
        raise Rejected("too_large", f"{len(data)} bytes > --max-bytes {transform.max_bytes}")
    image = _open(data)
    fmt = FORMATS.get(image.format or "")
    if fmt is None:
        raise Rejected("unsupported_format", f"{image.format} is not one of jpeg, png, gif, bmp, webp")
    if transform.verify == "full":
        _decode(image, "undecodable")
    elif not _ends_complete(data, fmt):
        _decode(image, "truncated")  # header looked fine but the end is missing: decode to be sure
    if transform.resize is None and transform.reencode is None:
        width, height = image.size
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
