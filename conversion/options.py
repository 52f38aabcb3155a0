"""The options every conversion shares, validated once; each kind's options extend them."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from dataset.errors import OptionError
from dataset.layout import COMPRESSIONS

DEFAULT_SPLITS = (("train", 0.8), ("validation", 0.1), ("test", 0.1))
MODES = ("error", "overwrite", "append")  # append: see conversion.images.append
_SPLIT_NAME = re.compile(r"^[A-Za-z0-9_]+$")


@dataclass(frozen=True, kw_only=True)
class ConvertOptions:
    """What every conversion takes besides its input: splits, shards, codec, output mode, reject limit."""

    splits: tuple[tuple[str, float], ...] = DEFAULT_SPLITS
    num_shards: int | None = None
    target_shard_mb: float = 128.0
    compression: str = "none"
    mode: str = "error"
    max_reject_fraction: float = 0.05

    def __post_init__(self) -> None:
        if self.uses_split_fractions:
            check_splits(self.splits)
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

    @property
    def uses_split_fractions(self) -> bool:
        """Whether `splits` decides the split (not, e.g., folder names)."""
        return True

    def shards_for(self, num_records: int, num_bytes: int) -> int:
        """Shards of a split: `num_shards`, or one per `target_shard_mb`, never more than its records."""
        wanted = self.num_shards or max(1, math.ceil(num_bytes / (self.target_shard_mb * 1024 * 1024)))
        return max(1, min(wanted, num_records))


def check_splits(splits: tuple[tuple[str, float], ...]) -> None:
    """Split names are identifiers, unique, with fractions in [0, 1] adding up to 1.

    Raises:
        OptionError: they are not.
    """
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
    check_splits(tuple(splits))
    return tuple(splits)
