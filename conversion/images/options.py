"""Options of the image conversion, validated once at the edge and passed down whole."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from conversion.options import ConvertOptions
from dataset.errors import OptionError
from dataset.reads import DEFAULT_READ_CONCURRENCY

VERIFY_LEVELS = ("header", "decode", "full")  # see conversion.images.check
REENCODE_FORMATS = ("jpeg", "png")
MAX_READ_CONCURRENCY = 256  # per task; each in-flight file is held in memory (up to --max-bytes)
ON_CHANGE = ("keep", "replace")  # what an append does with changed and deleted source files


@dataclass(frozen=True)
class ImageTransform:
    """What each accepted image becomes; the defaults keep the original bytes."""

    verify: str = "decode"
    max_bytes: int = 64 * 1024 * 1024
    resize: tuple[int, int] | None = None  # (height, width)
    reencode: str | None = None
    jpeg_quality: int = 95
    keep_orientation: bool = False  # keep the stored pixels and record the EXIF orientation (image/orientation)

    def __post_init__(self) -> None:
        if self.verify not in VERIFY_LEVELS:
            raise OptionError(f"--verify must be one of {', '.join(VERIFY_LEVELS)}, got {self.verify!r}")
        if self.max_bytes <= 0:
            raise OptionError(f"--max-bytes must be positive, got {self.max_bytes}")
        if self.resize is not None and (len(self.resize) != 2 or min(self.resize) <= 0):
            raise OptionError(f"--resize needs two positive sizes HxW, got {self.resize}")
        if self.reencode is not None and self.reencode not in REENCODE_FORMATS:
            raise OptionError(f"--reencode must be one of {', '.join(REENCODE_FORMATS)}, got {self.reencode!r}")
        if not 1 <= self.jpeg_quality <= 100:
            raise OptionError(f"--jpeg-quality must be in 1..100, got {self.jpeg_quality}")


@dataclass(frozen=True)
class ImageConvertOptions(ConvertOptions):
    """Everything `convert_images` needs; see `jobs/convert_images.py --help` for each field."""

    input: str
    output: str
    split_from_folders: bool = False
    labels: tuple[str, ...] | None = None
    transform: ImageTransform = ImageTransform()
    seed: int = 0
    read_concurrency: int = DEFAULT_READ_CONCURRENCY
    on_change: str = "keep"  # --mode append: keep the records of changed and deleted files, or replace them
    retry_rejected: bool = False  # --mode append: convert again the files an earlier version rejected
    list_prefix: str | None = None  # --mode append: list only the folders this names under the root (* any folder)

    def __post_init__(self) -> None:
        if not self.input or not self.output:
            raise OptionError("--input and --output are both required")
        if self.on_change not in ON_CHANGE:
            raise OptionError(f"--on-change must be one of {', '.join(ON_CHANGE)}, got {self.on_change!r}")
        append_only = {
            "--on-change replace": self.on_change != "keep",
            "--retry-rejected": self.retry_rejected,
            "--list-prefix": self.list_prefix is not None,
        }
        given = [flag for flag, used in append_only.items() if used]
        if given and self.mode != "append":
            raise OptionError(f"{', '.join(given)} apply to --mode append only; add --mode append or leave them out")
        if self.list_prefix is not None:
            parts = self.list_prefix.strip("/").split("/")
            if not self.list_prefix.strip("/") or any(part in ("", ".", "..") for part in parts):
                raise OptionError(
                    f"--list-prefix must be a folder under --input, relative to it (e.g. cats/2026-12-06, or "
                    f"*/2026-12-06 for that folder in every label folder), got {self.list_prefix!r}"
                )
        if not 1 <= self.read_concurrency <= MAX_READ_CONCURRENCY:
            raise OptionError(f"--read-concurrency must be in 1..{MAX_READ_CONCURRENCY}, got {self.read_concurrency}")
        super().__post_init__()
        if self.labels is not None and len(set(self.labels)) != len(self.labels):
            raise OptionError(f"--labels has duplicates: {', '.join(self.labels)}")
        if self.labels is not None and any(unicodedata.category(ch) == "Cc" for label in self.labels for ch in label):
            raise OptionError(f"--labels holds control characters: {self.labels!r}")

    @property
    def uses_split_fractions(self) -> bool:
        return not self.split_from_folders


def parse_size(text: str) -> tuple[int, int]:
    """Parse `HxW`, e.g. `224x224`."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match or min(int(match[1]), int(match[2])) <= 0:
        raise OptionError(f"--resize must be HxW with positive integers, e.g. 224x224, got {text!r}")
    return int(match[1]), int(match[2])
