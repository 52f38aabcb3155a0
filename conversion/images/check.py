"""Checking and transforming one image's bytes with Pillow.

Verification levels (`--verify`): `header` reads the header and decodes only files whose end
is missing; `decode` (the default) decodes every file (a JPEG at 1/8 scale, twice: see
`_jpeg_scan_complete`), so nothing that training cannot decode gets in; `full` decodes JPEGs at
full scale too. At every level `conversion.images.tf_rules` decides whether training's decoder reads the
file's bytes as a viewer shows them; where it does not, and for formats training does not read at all
(`conversion.images.formats`), the record holds a lossless PNG of Pillow's pixels (the first frame or
page). The EXIF orientation is applied (`conversion.images.orientation`) unless `keep_orientation` is set.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from conversion.images.formats import FORMATS, TRAINING_DECODES, format_name
from conversion.images.options import ImageTransform
from conversion.images.orientation import UPRIGHT, jpeg_upright, orientation, swaps_axes, upright
from conversion.images.rejected import Rejected
from conversion.images.tf_rules import AS_PNG, KEEP, check_gif_pixels, training_reads

__all__ = ["CHANNELS", "ImageRecord", "Rejected", "check_image"]

CHANNELS = {
    "1": 1,
    "L": 1,
    "I": 1,
    "I;16": 1,
    "I;16B": 1,
    "I;16L": 1,
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


@dataclass(frozen=True)
class ImageRecord:
    """The checked (and possibly transformed) image that goes into a record."""

    encoded: bytes
    format: str
    height: int
    width: int
    channels: int
    source_format: str = ""  # the file's format when it was rewritten to PNG for training, else ""
    turned: int = UPRIGHT  # the EXIF orientation applied to the pixels (1: none)
    orientation: int | None = None  # with keep_orientation: the file's EXIF orientation, for image/orientation
    frames: int = 1  # frames or pages in the file (the first is stored), counted for files stored as PNG


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


def _verify(data: bytes, image: Image.Image, fmt: str, level: str, verdict: str) -> None:
    if level == "header":
        if not _ends_complete(data, fmt):
            _decode(image, "truncated")  # header looked fine but the end is missing: decode to be sure
    elif fmt == "jpeg" and verdict == KEEP:  # not a lossless JPEG: libjpeg-turbo cannot scale those (it crashed)
        _jpeg_scan_complete(data, scaled=level != "full")
    else:
        _decode(image, "undecodable")  # decoded once: the transforms below reuse its pixels


_PNG_MODES = ("1", "L", "LA", "P", "RGB", "RGBA", "I;16")  # what a PNG stores as it is


def _as_png(image: Image.Image, fmt: str) -> Image.Image:
    """The first frame in a mode PNG stores losslessly.

    16-bit greyscale stays 16-bit; 32-bit integers within 16 bits become 16-bit; floating-point pixels are
    rejected. Alpha is kept (training decodes 3 channels: the colours under it). A GIF's transparent pixels
    become transparent black: what TF decodes for them in a GIF it reads as it is. Other modes (CMYK, YCbCr...)
    become RGB by Pillow's conversion.

    Raises:
        Rejected: pixels a PNG cannot hold faithfully.
    """
    image.seek(0)
    mode = image.mode
    if mode == "P" and fmt == "gif" and "transparency" in image.info:
        rgba = np.array(image.convert("RGBA"))
        rgba[rgba[:, :, 3] == 0] = 0
        return Image.fromarray(rgba, "RGBA")
    if mode in _PNG_MODES:
        return image
    if mode.startswith("I"):
        values = np.asarray(image)
        if values.size and (values.min() < 0 or values.max() > 0xFFFF):
            raise Rejected("unsupported_pixels", f"{mode} pixels beyond 16 bits: a PNG cannot hold them faithfully")
        return Image.fromarray(values.astype(np.uint16))
    if mode == "F":
        raise Rejected("unsupported_pixels", "floating-point pixels: a PNG cannot hold them faithfully")
    try:
        return image.convert("RGBA" if "A" in mode or "a" in mode else "RGB")
    except ValueError as err:
        raise Rejected("unsupported_pixels", f"Pillow cannot turn {mode} pixels into RGB: {err}") from None


def _eight_bits(image: Image.Image) -> Image.Image:
    """16-bit greyscale as 8-bit (the high byte, as TF decodes a 16-bit PNG) for a JPEG."""
    if image.mode.startswith("I"):
        return Image.fromarray((np.asarray(image).astype(np.uint32) >> 8).astype(np.uint8), "L")
    return image


def _ends_complete(data: bytes, fmt: str) -> bool:
    trailer = _TRAILERS.get(fmt)
    return trailer is None or trailer in data[-_TRAILER_WINDOW:]


def _encode(image: Image.Image, fmt: str, quality: int) -> bytes:
    out = io.BytesIO()
    if fmt == "jpeg":
        image = _eight_bits(image)
        if image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        image.save(out, format="JPEG", quality=quality, optimize=False)
    else:
        if image.mode not in ("1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16"):
            image = image.convert("RGBA")
        image.save(out, format="PNG", compress_level=6)
    return out.getvalue()


def _frames(image: Image.Image) -> int:
    try:
        return int(getattr(image, "n_frames", 1))
    except Exception:  # a damaged later frame or page: the first is what is stored
        return 1


def check_image(data: bytes, transform: ImageTransform) -> ImageRecord:
    """Check one file's bytes and apply the transform.

    Raises:
        Rejected: the file is empty, too large, not a supported image, a decompression bomb,
            truncated or does not decode (at the verification level asked for), or its pixels cannot
            be stored faithfully.
    """
    if not data:
        raise Rejected("empty", "zero-byte file")
    if len(data) > transform.max_bytes:
        raise Rejected("too_large", f"{len(data)} bytes > --max-bytes {transform.max_bytes}")
    image = _open(data)
    fmt = format_name(image.format)
    if fmt is None:
        names = ", ".join(sorted({name for name, _ in FORMATS.values()}))
        raise Rejected("unsupported_format", f"{image.format} is not one of {names}")
    verdict = training_reads(data, fmt, image.size, transform.verify != "header") if fmt in TRAINING_DECODES else AS_PNG
    _verify(data, image, fmt, transform.verify, verdict)
    if fmt == "gif" and transform.verify != "header":
        check_gif_pixels(image, data)  # decoded by _verify
    found = orientation(image, data)
    turn = UPRIGHT if transform.keep_orientation else found
    kept = found if transform.keep_orientation else None
    if transform.resize is None and transform.reencode is None:
        return _stored(data, image, fmt, verdict, turn, kept)
    out_fmt = transform.reencode or ("jpeg" if fmt == "jpeg" and verdict == KEEP else "png")
    if transform.resize is not None:
        height, width = transform.resize
        if fmt == "jpeg" and verdict == KEEP:  # DCT-domain downscale first, to the size before the turn
            image.draft("RGB" if image.mode != "L" else "L", (height, width) if swaps_axes(turn) else (width, height))
        try:
            image = _as_png(image, fmt) if verdict == AS_PNG or fmt not in TRAINING_DECODES else image
            image = image.convert("RGBA") if image.mode == "P" else image
            image = image.convert("I") if image.mode == "I;16" else image  # Pillow resizes 16 bits as 32
            image = upright(image, turn).resize((width, height), Image.BILINEAR, reducing_gap=None)
        except Rejected:
            raise
        except Exception as err:
            raise Rejected("undecodable", f"{type(err).__name__}: {err}") from None
    else:
        _decode(image, "undecodable")
        image = upright(_as_png(image, fmt) if fmt not in TRAINING_DECODES else image, turn)
    encoded = _encode(image, out_fmt, transform.jpeg_quality)
    final_mode = "L" if image.mode in ("1", "L", "I", "I;16") else ("RGB" if out_fmt == "jpeg" else image.mode)
    return ImageRecord(
        encoded, out_fmt, image.size[1], image.size[0], CHANNELS.get(final_mode, 3), turned=turn, orientation=kept
    )


def _stored(data: bytes, image: Image.Image, fmt: str, verdict: str, turn: int, kept: int | None) -> ImageRecord:
    """The record of a file without --resize/--reencode: its bytes, a JPEG turned upright, or a PNG."""
    width, height = image.size
    if verdict == KEEP and turn == UPRIGHT:
        return ImageRecord(data, fmt, height, width, CHANNELS.get(image.mode, 3), orientation=kept)
    if swaps_axes(turn):
        width, height = height, width
    if verdict == KEEP and fmt == "jpeg":
        _decode(image, "undecodable")
        return ImageRecord(jpeg_upright(image, turn), "jpeg", height, width, CHANNELS.get(image.mode, 3), turned=turn)
    _decode(image, "undecodable")
    frames = _frames(image)
    png = upright(_as_png(image, fmt), turn)
    source = fmt if verdict == AS_PNG else ""  # else training reads the original, which only needed turning
    return ImageRecord(
        _encode(png, "png", 0), "png", height, width, CHANNELS.get(png.mode, 3), source, turn, kept, frames
    )
