"""Options of the image conversion, validated once at the edge and passed down whole."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from conversion.errors import OptionError
from conversion.tfrecord_io import COMPRESSIONS

DEFAULT_SPLITS = (("train", 0.8), ("validation", 0.1), ("test", 0.1))
MODES = ("error", "overwrite")
VERIFY_LEVELS = ("header", "full")
REENCODE_FORMATS = ("jpeg", "png")
_SPLIT_NAME = re.compile(r"^[A-Za-z0-9_]+$")


@dataclass(frozen=True)
class ImageTransform:
    """What each accepted image becomes; the defaults keep the original bytes."""

    verify: str = "header"
    max_bytes: int = 64 * 1024 * 1024
    resize: tuple[int, int] | None = None  # (height, width)
    reencode: str | None = None
    jpeg_quality: int = 95

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
class ImageConvertOptions:
    """Everything `convert_images` needs; see `jobs/convert_images.py --help` for each field."""

    input: str
    output: str
    splits: tuple[tuple[str, float], ...] = DEFAULT_SPLITS
    split_from_folders: bool = False
    labels: tuple[str, ...] | None = None
    num_shards: int | None = None
    target_shard_mb: float = 128.0
    compression: str = "none"
    mode: str = "error"
    transform: ImageTransform = ImageTransform()
    max_reject_fraction: float = 0.05
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.input or not self.output:
            raise OptionError("--input and --output are both required")
        if not self.split_from_folders:
            _check_splits(self.splits)
        if self.labels is not None and len(set(self.labels)) != len(self.labels):
            raise OptionError(f"--labels has duplicates: {', '.join(self.labels)}")
        if self.num_shards is not None and self.num_shards < 1:
            raise OptionError(f"--num-shards must be at least 1, got {self.num_shards}")
        if not self.target_shard_mb > 0:
            raise OptionError(f"--target-shard-mb must be positive, got {self.target_shard_mb}")
        if self.compression not in COMPRESSIONS:
            raise OptionError(
                f"--compression must be one of {', '.join(COMPRESSIONS)} (codecs tf.data reads), "
                f"got {self.compression!r}"
            )
        if self.mode not in MODES:
            raise OptionError(f"--mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if not 0.0 <= self.max_reject_fraction <= 1.0:
            raise OptionError(f"--max-reject-fraction must be in [0, 1], got {self.max_reject_fraction}")

    def shards_for(self, num_records: int, num_bytes: int) -> int:
        """Number of shards for a split: `num_shards`, or one per `target_shard_mb`, never above the records."""
        wanted = self.num_shards or max(1, math.ceil(num_bytes / (self.target_shard_mb * 1024 * 1024)))
        return max(1, min(wanted, num_records))


def _check_splits(splits: tuple[tuple[str, float], ...]) -> None:
    names = [name for name, _ in splits]
    if not splits:
        raise OptionError("--splits needs at least one split, e.g. train=0.8,validation=0.1,test=0.1")
    if len(set(names)) != len(names):
        raise OptionError(f"--splits repeats a name: {', '.join(names)}")
    for name, fraction in splits:
        if not _SPLIT_NAME.match(name):
            raise OptionError(f"split name {name!r} may only hold letters, digits and underscores")
        if not 0.0 <= fraction <= 1.0:
            raise OptionError(f"split {name} has fraction {fraction}; fractions lie in [0, 1]")
    total = sum(fraction for _, fraction in splits)
    if abs(total - 1.0) > 1e-6:
        raise OptionError(f"--splits fractions add up to {total:g}, not 1; e.g. train=0.8,validation=0.1,test=0.1")


def parse_splits(text: str) -> tuple[tuple[str, float], ...]:
    """Parse `train=0.8,validation=0.1,test=0.1`."""
    splits = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        try:
            if not sep:
                raise ValueError
            splits.append((name.strip(), float(value)))
        except ValueError:
            raise OptionError(f"--splits item {item!r} is not NAME=FRACTION, e.g. train=0.8") from None
    _check_splits(tuple(splits))
    return tuple(splits)


def parse_size(text: str) -> tuple[int, int]:
    """Parse `HxW`, e.g. `224x224`."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match or min(int(match[1]), int(match[2])) <= 0:
        raise OptionError(f"--resize must be HxW with positive integers, e.g. 224x224, got {text!r}")
    return int(match[1]), int(match[2])
