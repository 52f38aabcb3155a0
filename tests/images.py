"""Generating small real image files for tests (deterministic content)."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def image_bytes(fmt: str, size: tuple[int, int] = (12, 10), mode: str = "RGB", seed: int = 0) -> bytes:
    """Encoded bytes of a small image with seeded random pixels."""
    rng = np.random.default_rng(seed)
    channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
    pixels = rng.integers(0, 256, size=(size[1], size[0], channels), dtype=np.uint8)
    image = Image.fromarray(pixels[:, :, 0] if channels == 1 else pixels, mode)
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def write(root: Path, relpath: str, data: bytes) -> Path:
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def bomb_png(width: int = 40000, height: int = 40000) -> bytes:
    """A tiny PNG whose header claims more pixels than Pillow's decompression-bomb limit."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


def bmp_bytes(bits: int, pixels: np.ndarray, compression: int = 0) -> bytes:
    """A BITMAPINFOHEADER BMP that Pillow cannot write: 4-bit (16-colour palette), 16-bit (5-5-5)
    or 8-bit RLE (`compression=1`); `pixels` holds palette indices (4, 8) or RGB values (16)."""
    height, width = pixels.shape[:2]
    palette = b""
    if bits in (4, 8):
        palette = b"".join(bytes((i * 16 % 256, 255 - i * 16 % 256, i * 8 % 256, 0)) for i in range(1 << bits))
    rows = []
    for row in pixels[::-1]:  # bottom-up
        if bits == 4:
            line = bytes((int(row[i]) << 4) | (int(row[i + 1]) if i + 1 < width else 0) for i in range(0, width, 2))
        elif bits == 16:
            line = b"".join(
                struct.pack("<H", (int(r) >> 3) << 10 | (int(g) >> 3) << 5 | (int(b) >> 3)) for r, g, b in row
            )
        elif compression == 1:  # RLE8: (1, index) runs, end of line
            rows.append(b"".join(bytes((1, int(v))) for v in row) + b"\0\0")
            continue
        else:
            line = bytes(int(v) for v in row)
        rows.append(line + b"\0" * (-len(line) % 4))
    body = b"".join(rows) + (b"\0\1" if compression == 1 else b"")
    offset = 14 + 40 + len(palette)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, bits, compression, len(body), 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", offset + len(body), 0, 0, offset) + info + palette + body


def corrupt_png(seed: int) -> bytes:
    """A 32x32 PNG whose IDAT data is damaged, with a recomputed chunk CRC: only a decode notices."""
    png = image_bytes("PNG", (32, 32), seed=seed)
    start = png.index(b"IDAT")
    length = struct.unpack(">I", png[start - 4 : start])[0]
    data = bytearray(png)
    data[start + 4 + length // 2 : start + 12 + length // 2] = b"\xff" * 8
    data[start + 4 + length : start + 8 + length] = struct.pack(
        ">I", zlib.crc32(bytes(data[start : start + 4 + length]))
    )
    return bytes(data)


def _sub_blocks(data: bytes) -> bytes:
    return b"".join(bytes([len(data[i : i + 255])]) + data[i : i + 255] for i in range(0, len(data), 255)) + b"\0"


def _lzw(indices: list[int], min_code: int = 2) -> bytes:
    """GIF LZW data that codes each index alone (a clear code before the code size would grow)."""
    clear, size = 1 << min_code, min_code + 1
    bits, count, out = 0, 0, bytearray()

    def emit(code: int) -> None:
        nonlocal bits, count
        bits |= code << count
        count += size
        while count >= 8:
            out.append(bits & 255)
            bits >>= 8
            count -= 8

    emit(clear)
    run = 0
    for index in indices:
        emit(index)
        run += 1
        if run == (1 << size) - clear - 3:
            emit(clear)
            run = 0
    emit(clear + 1)
    return bytes(out) + (bytes([bits & 255]) if count else b"")


def gif_frame(
    indices: list[int],
    size: tuple[int, int],
    at: tuple[int, int] = (0, 0),
    local: bytes | None = None,
    transparent: int | None = None,
) -> bytes:
    """One GIF image (a graphic control extension when `transparent` is set): `indices` row by row,
    `size` (width, height) at `at` (left, top), with a local colour table `local` (RGB triplets) if given."""
    out = b""
    if transparent is not None:
        out += b"\x21\xf9\x04\x01\0\0" + bytes([transparent]) + b"\0"
    flags = 0x80 | (len(local) // 3).bit_length() - 2 if local else 0
    out += b"," + struct.pack("<HHHHB", *at, *size, flags) + (local or b"")
    return out + b"\x02" + _sub_blocks(_lzw(indices))


def gif_bytes(screen: tuple[int, int], frames: list[bytes], table: bytes | None = None) -> bytes:
    """A GIF89a of `frames` (`gif_frame`) on a logical screen (width, height), with a global colour table
    `table` (RGB triplets, 2, 4, 8... colours) or none."""
    flags = 0x80 | 0x70 | (len(table) // 3).bit_length() - 2 if table else 0
    return b"GIF89a" + struct.pack("<HHBBB", *screen, flags, 0, 0) + (table or b"") + b"".join(frames) + b";"


def save(image: Image.Image, fmt: str, **options: object) -> bytes:
    """`image` encoded in `fmt` with Pillow's save options."""
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def with_orientation(image: Image.Image, fmt: str, orientation: int, **options: object) -> bytes:
    """`image` saved in `fmt` (JPEG, WEBP, PNG, TIFF) with the EXIF orientation tag set to `orientation`."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    return save(image, fmt, exif=exif.tobytes(), **options)


def png_chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    """The (type, data) of each chunk of a PNG."""
    chunks, at = [], 8
    while at < len(png):
        length = struct.unpack(">I", png[at : at + 4])[0]
        chunks.append((png[at + 4 : at + 8], png[at + 8 : at + 8 + length]))
        at += 12 + length
    return chunks


def png_of_chunks(chunks: list[tuple[bytes, bytes]]) -> bytes:
    """A PNG of (type, data) chunks, each with its right CRC."""
    return b"\x89PNG\r\n\x1a\n" + b"".join(
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data)) for kind, data in chunks
    )


def qoi_bytes(pixels: np.ndarray) -> bytes:
    """A QOI image (Pillow reads, cannot write) of RGB `pixels`, every pixel a QOI_OP_RGB."""
    height, width = pixels.shape[:2]
    body = b"".join(b"\xfe" + bytes(pixel) for pixel in pixels.reshape(-1, 3).tolist())
    return b"qoif" + struct.pack(">IIBB", width, height, 3, 0) + body + b"\0" * 7 + b"\1"


# The DC luminance Huffman table of the JPEG standard (K.3): code lengths 1..16 counted, then the symbols.
_DC_COUNTS = (0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0)
_DC_SYMBOLS = tuple(range(12))


def lossless_jpeg_bytes(grey: np.ndarray) -> bytes:
    """An 8-bit greyscale lossless JPEG (SOF3, predictor 1: the left sample; the row above in column 0)."""
    height, width = grey.shape
    codes, code, symbols = {}, 0, iter(_DC_SYMBOLS)
    for length, count in enumerate(_DC_COUNTS, start=1):
        for _ in range(count):
            codes[next(symbols)] = (code, length)
            code += 1
        code <<= 1
    bits: list[int] = []
    values = grey.astype(np.int32)
    for y in range(height):
        for x in range(width):
            if x:
                predicted = values[y, x - 1]
            else:
                predicted = values[y - 1, 0] if y else 128
            diff = int(values[y, x] - predicted)
            size = abs(diff).bit_length()
            code, length = codes[size]
            bits += [(code >> i) & 1 for i in range(length - 1, -1, -1)]
            extra = diff if diff >= 0 else diff + (1 << size) - 1
            bits += [(extra >> i) & 1 for i in range(size - 1, -1, -1)]
    bits += [1] * (-len(bits) % 8)
    scan = bytearray()
    for i in range(0, len(bits), 8):
        byte = int("".join(map(str, bits[i : i + 8])), 2)
        scan += b"\xff\x00" if byte == 0xFF else bytes([byte])

    def segment(marker: int, payload: bytes) -> bytes:
        return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload

    return (
        b"\xff\xd8"
        + segment(0xC4, b"\x00" + bytes(_DC_COUNTS) + bytes(_DC_SYMBOLS))
        + segment(0xC3, struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00")
        + segment(0xDA, b"\x01\x01\x00\x01\x00\x00")
        + bytes(scan)
        + b"\xff\xd9"
    )
