"""Whether TensorFlow's decoder reads a JPEG, PNG, GIF or BMP file as a viewer shows it, decided without TF.

The conversion install has no TensorFlow, so these rules reproduce what `tf.io.decode_image(..., channels=3,
expand_animations=False)` (TF 2.15) does where it and Pillow disagree; each was found by decoding files made
in code with both (tests/test_real_world_images.py keeps them). They read headers and chunk structure only:
the pixels are Pillow's to decode. `training_reads` says `KEEP` (the bytes go in the record as they are) or
`AS_PNG` (TF would refuse the file or show other pixels than a viewer, though Pillow decodes it faithfully:
the record holds a PNG of Pillow's pixels), or raises `Rejected` (no decoder can show it faithfully).

* GIF: TF draws the first frame at its offset on a canvas as large as the largest frame (not the logical
  screen Pillow and viewers use) and fails on a frame without any colour table (global or local) and on a
  colour index beyond the table (the transparent index excepted). Transparent pixels decode black.
* PNG: libpng refuses a file without IEND and a critical chunk (IHDR, PLTE, IDAT, IEND) whose CRC does not
  match; Pillow reads both.
* JPEG: TF's libjpeg-turbo decodes 8-bit baseline, extended, progressive and arithmetic-coded frames, not
  lossless or hierarchical ones nor 12-bit samples.
* BMP: TF reads BITMAPINFOHEADER files of 24 or 32 bits per pixel, uncompressed; it reads an 8-bit palette
  BMP's indices as grey levels and refuses the rest.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image

from conversion.images.rejected import Rejected

KEEP, AS_PNG = "keep", "png"
_BMP_KEPT_BITS = (24, 32)
_BMP_RGB = 0  # BI_RGB: no compression, no bit fields
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CRITICAL = (b"IHDR", b"PLTE", b"IDAT", b"IEND")
# SOF markers TF's libjpeg-turbo decodes (baseline, extended, progressive, arithmetic extended/progressive).
_JPEG_TF_FRAMES = frozenset({0xC0, 0xC1, 0xC2, 0xC9, 0xCA})
_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # every SOFn (C4 DHT, C8 JPG, CC DAC are not)


@dataclass(frozen=True)
class GifLayout:
    """What a GIF's blocks say about its first frame and the canvas TF draws it on."""

    screen: tuple[int, int]  # the logical screen (width, height)
    first: tuple[int, int, int, int]  # the first frame's left, top, width, height
    canvas: tuple[int, int]  # TF's canvas: the largest frame width and height
    colours: int  # entries in the first frame's colour table (local, else global; 0: none)
    transparent: int | None  # the first frame's transparent index


def _sub_blocks_end(data: bytes, at: int) -> int:
    """The offset after the data sub-blocks starting at `at` (the end of `data` if they run past it)."""
    size = len(data)
    while at < size:
        length = data[at]
        at += 1 + length
        if length == 0:
            return at
    return size


def gif_layout(data: bytes) -> GifLayout | None:
    """The first frame and canvas of a GIF, read from its blocks; None when there is no whole image descriptor."""
    if len(data) < 13:
        return None
    width, height, flags = struct.unpack_from("<HHB", data, 6)
    global_colours = 2 << (flags & 7) if flags & 0x80 else 0
    at = 13 + 3 * global_colours
    first, transparent, pending_transparent = None, None, None
    canvas = (0, 0)
    while at < len(data):
        block = data[at]
        if block == 0x21 and at + 1 < len(data):  # an extension: a graphic control one holds the transparency
            if data[at + 1] == 0xF9 and at + 6 < len(data) and data[at + 2] == 4:
                pending_transparent = data[at + 6] if data[at + 3] & 1 else None
            at = _sub_blocks_end(data, at + 2)
        elif block == 0x2C and at + 10 <= len(data):  # an image descriptor
            left, top, frame_width, frame_height, image_flags = struct.unpack_from("<HHHHB", data, at + 1)
            local_colours = 2 << (image_flags & 7) if image_flags & 0x80 else 0
            if first is None:
                first = (left, top, frame_width, frame_height)
                colours, transparent = local_colours or global_colours, pending_transparent
            canvas = (max(canvas[0], frame_width), max(canvas[1], frame_height))
            pending_transparent = None
            at = _sub_blocks_end(data, at + 10 + 3 * local_colours + 1)  # + the LZW minimum code size
        else:  # the trailer, or bytes that end the blocks
            break
    if first is None:
        return None
    return GifLayout((width, height), first, canvas, colours, transparent)


def _gif(data: bytes, size: tuple[int, int]) -> str:
    layout = gif_layout(data)
    if layout is None:
        return KEEP  # Pillow's decode decides (it found a frame where these rules found none)
    if not layout.colours:
        raise Rejected(
            "no_color_table",
            "GIF without a colour table (global or local): its colours are undefined and TensorFlow refuses it",
        )
    left, top, width, height = layout.first
    if (left, top) == (0, 0) and (width, height) == size == layout.canvas:
        return KEEP
    return AS_PNG  # TF would draw another picture than the one a viewer shows


def check_gif_pixels(image: Image.Image, data: bytes) -> None:
    """Reject a decoded first frame holding a colour index beyond its colour table (TF refuses it; Pillow shows
    black, the GIF specification no colour at all)."""
    layout = gif_layout(data)
    if layout is None or not layout.colours or image.mode not in ("P", "L"):
        return
    left, top, width, height = layout.first
    indices = np.asarray(image)[top : top + height, left : left + width]
    if indices.ndim != 2 or not indices.size:
        return
    beyond = indices >= layout.colours
    if layout.transparent is not None:
        beyond &= indices != layout.transparent
    if beyond.any():
        raise Rejected(
            "undecodable",
            f"GIF colour index {int(indices[beyond].max())} beyond its colour table of {layout.colours} colours",
        )


def _png(data: bytes, check_crc: bool) -> str:
    """AS_PNG for a PNG libpng refuses but whose pixels Pillow decodes whole (no IEND); rejects bad CRCs."""
    at, size = len(_PNG_SIGNATURE), len(data)
    while at + 12 <= size:
        length = struct.unpack_from(">I", data, at)[0]
        kind = data[at + 4 : at + 8]
        end = at + 8 + length
        if end + 4 > size:
            break
        if check_crc and kind in _PNG_CRITICAL:
            crc = zlib.crc32(memoryview(data)[at + 4 : end])
            if crc != struct.unpack_from(">I", data, end)[0]:
                raise Rejected("undecodable", f"PNG {kind.decode()} chunk fails its CRC check: the file is damaged")
        if kind == b"IEND":
            return KEEP
        at = end + 4
    return AS_PNG  # no IEND: TF refuses it; the pixels are Pillow's to decode (a short IDAT is `truncated`)


def _jpeg(data: bytes) -> str:
    """AS_PNG for a frame type or sample precision TF's libjpeg-turbo does not decode."""
    at, size = 2, len(data)
    while at + 4 <= size:
        if data[at] != 0xFF:
            return KEEP  # not a marker where one should be: the decoders decide
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in _JPEG_FRAMES:
            precision = data[at + 4] if at + 4 < size else 8
            return KEEP if marker in _JPEG_TF_FRAMES and precision == 8 else AS_PNG
        if marker == 0xD8 or 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            at += 2
            continue
        at += 2 + struct.unpack_from(">H", data, at + 2)[0]
    return KEEP


def _bmp(data: bytes) -> str:
    if len(data) < 34:
        return AS_PNG
    header_size = struct.unpack_from("<I", data, 14)[0]
    if header_size != 40:
        return AS_PNG
    bits, compression = struct.unpack_from("<HI", data, 28)
    return KEEP if bits in _BMP_KEPT_BITS and compression == _BMP_RGB else AS_PNG


def training_reads(data: bytes, fmt: str, size: tuple[int, int], check_crc: bool = True) -> str:
    """KEEP when TF decodes this JPEG/PNG/GIF/BMP file's bytes to the pixels a viewer shows, else AS_PNG.

    `size` is the (width, height) Pillow reports; `check_crc` checks the CRCs of a PNG's critical chunks (a
    pass over the whole file, which `--verify header` leaves out).

    Raises:
        Rejected: a GIF without a colour table, a PNG with a damaged critical chunk.
    """
    if fmt == "gif":
        return _gif(data, size)
    if fmt == "png":
        return _png(data, check_crc)
    if fmt == "jpeg":
        return _jpeg(data)
    if fmt == "bmp":
        return _bmp(data)
    return AS_PNG
