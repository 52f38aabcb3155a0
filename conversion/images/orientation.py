"""EXIF orientation: the pixels a viewer shows.

Cameras and phones store the sensor's pixels and an EXIF orientation tag (1-8) that tells viewers how to turn
them; TensorFlow ignores it. By default conversion applies it, so a record holds upright pixels: a file whose
orientation is 1 or absent keeps its bytes, any other is rewritten (a JPEG re-encoded with its own quantization
tables and chroma subsampling, which keeps its size and loses least; see docs/images.md). With `--keep-orientation`
records keep the original bytes and carry the tag as the `image/orientation` feature instead.
"""

from __future__ import annotations

import io

from PIL import Image, JpegImagePlugin

EXIF_ORIENTATION = 0x0112
UPRIGHT = 1
# Orientation → the transpose that makes the pixels upright (as PIL.ImageOps.exif_transpose).
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPS_AXES = frozenset({5, 6, 7, 8})
_SUBSAMPLING_444, _SUBSAMPLING_422, _SUBSAMPLING_420 = 0, 1, 2


def orientation(image: Image.Image, data: bytes) -> int:
    """The file's EXIF orientation, 1 when absent, unreadable or out of 1..8 (viewers ignore those)."""
    if image.format == "PNG" and b"eXIf" not in data:  # Pillow would decode a PNG to look for it after IDAT
        return UPRIGHT
    if image.format in ("JPEG", "MPO", "WEBP") and "exif" not in image.info:
        return UPRIGHT
    try:
        value = image.getexif().get(EXIF_ORIENTATION, UPRIGHT)
    except Exception:  # a damaged EXIF block is no reason to refuse the pixels
        return UPRIGHT
    return value if isinstance(value, int) and value in _TRANSPOSE else UPRIGHT


def swaps_axes(value: int) -> bool:
    """True when upright pixels are the stored ones turned a quarter (width and height swap)."""
    return value in _SWAPS_AXES


def upright(image: Image.Image, value: int) -> Image.Image:
    """`image` turned as its orientation `value` says (itself for 1)."""
    transpose = _TRANSPOSE.get(value)
    return image if transpose is None else image.transpose(transpose)


def jpeg_upright(image: Image.Image, value: int) -> bytes:
    """A decoded JPEG turned upright and encoded again with its own quantization tables (transposed when the
    axes swap) and chroma subsampling (4:2:2 turned a quarter, 4:4:0, is written 4:4:4): the same size as the
    original, and the least loss of the encodings measured (see docs/images.md). EXIF is dropped (its orientation would
    turn the pixels again); the ICC profile is kept."""
    tables = image.quantization or {}
    subsampling = JpegImagePlugin.get_sampling(image)
    if subsampling not in (_SUBSAMPLING_444, _SUBSAMPLING_422, _SUBSAMPLING_420):
        subsampling = _SUBSAMPLING_444
    if swaps_axes(value):
        tables = {key: [table[8 * col + row] for row in range(8) for col in range(8)] for key, table in tables.items()}
        if subsampling == _SUBSAMPLING_422:
            subsampling = _SUBSAMPLING_444
    out = io.BytesIO()
    options = {"icc_profile": image.info["icc_profile"]} if image.info.get("icc_profile") else {}
    turned = upright(image, value)
    if tables:
        turned.save(
            out, format="JPEG", qtables=[tables[key] for key in sorted(tables)], subsampling=subsampling, **options
        )
    else:
        turned.save(out, format="JPEG", quality=95, subsampling=subsampling, **options)
    return out.getvalue()
