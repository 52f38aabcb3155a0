"""Options of the table conversion, validated once at the edge and passed down whole."""

from __future__ import annotations

from dataclasses import dataclass

from conversion.errors import OptionError
from conversion.options import DEFAULT_SPLITS, MODES, _check_splits
from conversion.tfrecord_io import COMPRESSIONS

FORMATS = ("csv", "parquet", "json", "orc")
TASKS = ("auto", "classification", "regression")
NULL_POLICIES = ("default", "reject")


@dataclass(frozen=True)
class TableConvertOptions:
    """Everything `convert_table` needs; see `jobs/convert_table.py --help` for each field."""

    output: str
    label: str
    input: str | None = None
    format: str = "csv"
    table: str | None = None
    schema: str | None = None  # Spark DDL, e.g. "a INT, b STRING"
    csv_null_value: str = ""  # CSV: the text that means null (e.g. "NA")
    key: str | None = None
    task: str = "auto"
    null_policy: str = "default"
    null_defaults: tuple[tuple[str, str], ...] = ()  # (column, value) overrides of the per-dtype default
    max_vocab: int = 100
    num_quantiles: int = 10
    splits: tuple[tuple[str, float], ...] = DEFAULT_SPLITS
    num_shards: int | None = None
    target_shard_mb: float = 128.0
    compression: str = "none"
    mode: str = "error"
    max_reject_fraction: float = 0.05

    def __post_init__(self) -> None:
        if (self.input is None) == (self.table is None):
            raise OptionError("give exactly one of --input PATH and --table NAME")
        if self.format not in FORMATS:
            raise OptionError(f"--format must be one of {', '.join(FORMATS)}, got {self.format!r}")
        if self.task not in TASKS:
            raise OptionError(f"--task must be one of {', '.join(TASKS)}, got {self.task!r}")
        if self.null_policy not in NULL_POLICIES:
            raise OptionError(f"--null-policy must be one of {', '.join(NULL_POLICIES)}, got {self.null_policy!r}")
        if self.max_vocab < 1 or self.num_quantiles < 2:
            raise OptionError("--max-vocab must be >= 1 and --num-quantiles >= 2")
        _check_splits(self.splits)
        if self.num_shards is not None and self.num_shards < 1:
            raise OptionError(f"--num-shards must be at least 1, got {self.num_shards}")
        if self.compression not in COMPRESSIONS:
            raise OptionError(f"--compression must be one of {', '.join(COMPRESSIONS)}, got {self.compression!r}")
        if self.mode not in MODES:
            raise OptionError(f"--mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if not 0.0 <= self.max_reject_fraction <= 1.0:
            raise OptionError(f"--max-reject-fraction must be in [0, 1], got {self.max_reject_fraction}")
