"""Which image files training can decode as they are, and which are stored as PNG instead.

Training decodes with `tf.io.decode_image(..., channels=3, expand_animations=False)` (TF 2.15).
It decodes JPEG (incl. grey, CMYK, progressive), PNG (incl. 1/8/16-bit, palette with
transparency, grey+alpha), GIF (the first frame of an animation) and uncompressed 24/32-bit
BMP as they are. It cannot decode WebP (any kind) nor 1-bit BMP, and reads an 8-bit palette BMP's
indices as grey levels (wrong colours, no error). Those are rewritten losslessly from Pillow's
decoded pixels into PNG (the first frame of an animated WebP, as TF does for GIF); the record's
`image/format` says "png" and the summary and manifest count them by original format
(`num_converted_formats`).
"""

from __future__ import annotations

import struct

# Pillow's format name → the name stored in image/format.
FORMATS = {"JPEG": "jpeg", "MPO": "jpeg", "PNG": "png", "GIF": "gif", "BMP": "bmp", "WEBP": "webp"}
_BMP_KEPT_BITS = (24, 32)
_BMP_RGB = 0  # BI_RGB: no compression, no bit fields


def _bmp_training_decodes(data: bytes) -> bool:
    """TF's BMP decoder reads BITMAPINFOHEADER files of 24 or 32 bits per pixel, uncompressed."""
    if len(data) < 34:
        return False
    header_size = struct.unpack_from("<I", data, 14)[0]
    if header_size != 40:
        return False
    bits, compression = struct.unpack_from("<HI", data, 28)
    return bits in _BMP_KEPT_BITS and compression == _BMP_RGB


def stored_as_png(data: bytes, fmt: str) -> bool:
    """True when training cannot decode this file's bytes as they are (see the module docstring)."""
    if fmt == "webp":
        return True
    if fmt == "bmp":
        return not _bmp_training_decodes(data)
    return False
