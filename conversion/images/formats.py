"""The image formats conversion reads: which are stored as they are, which as PNG of their pixels.

Training decodes with `tf.io.decode_image(..., channels=3, expand_animations=False)` (TF 2.15), which reads
JPEG, PNG, GIF and BMP. A file of those formats keeps its bytes when `conversion.images.tf_rules` finds that
TF decodes it to the pixels a viewer shows; otherwise, and for every other format below, the record holds a
lossless PNG of Pillow's decoded pixels (the first frame or page), its `image/format` says "png", and the
summary and manifest count it by original format (`num_converted_formats`).
"""

from __future__ import annotations

import posixpath

# Pillow's format name → (the name counted and stored in image/format when kept, the extensions listed).
FORMATS: dict[str, tuple[str, tuple[str, ...]]] = {
    "JPEG": ("jpeg", (".jpg", ".jpeg", ".jpe", ".jfif")),
    "MPO": ("jpeg", (".mpo",)),  # a JPEG followed by more JPEGs: TF and Pillow read the first
    "PNG": ("png", (".png", ".apng")),
    "GIF": ("gif", (".gif",)),
    "BMP": ("bmp", (".bmp",)),
    "DIB": ("dib", (".dib",)),
    "WEBP": ("webp", (".webp",)),
    "TIFF": ("tiff", (".tif", ".tiff")),
    "TGA": ("tga", (".tga",)),
    "PPM": ("pnm", (".ppm", ".pgm", ".pbm", ".pnm")),
    "ICO": ("ico", (".ico",)),
    "CUR": ("cur", (".cur",)),
    "JPEG2000": ("jpeg2000", (".jp2", ".j2k", ".j2c", ".jpc", ".jpf", ".jpx")),
    "PCX": ("pcx", (".pcx",)),
    "SGI": ("sgi", (".sgi", ".rgb", ".rgba", ".bw")),
    "QOI": ("qoi", (".qoi",)),
    "DDS": ("dds", (".dds",)),
}
# Formats whose bytes training can decode as they are (when `tf_rules` agrees for the file).
TRAINING_DECODES = frozenset({"jpeg", "png", "gif", "bmp"})
EXTENSIONS = frozenset(ext for _, extensions in FORMATS.values() for ext in extensions)


def format_name(pillow_format: str | None) -> str | None:
    """The name of a format conversion reads, or None."""
    entry = FORMATS.get(pillow_format or "")
    return entry[0] if entry else None


def has_convertible_extension(relpath: str) -> bool:
    return posixpath.splitext(relpath)[1].lower() in EXTENSIONS


def extensions_text() -> str:
    return " ".join(sorted(EXTENSIONS))
