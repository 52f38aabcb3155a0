"""Options of the table conversion, validated once at the edge and passed down whole."""

from __future__ import annotations

from dataclasses import dataclass

from conversion.options import ConvertOptions
from dataset.errors import OptionError

FORMATS = ("csv", "parquet", "json", "orc")
TASKS = ("auto", "classification", "regression")
NULL_POLICIES = ("keep", "fill", "reject")  # keep: left out of the record, readers supply the default
CSV_MODES = ("permissive", "dropmalformed", "failfast")

# The quantile boundaries are computed from a deterministic 1-in-k sample of the statistics split of about this many
# rows (all rows of a smaller split): its rank error, about 0.5/sqrt(rows) at the median, is 0.0011 here.
QUANTILE_SAMPLE_ROWS = 200_000


@dataclass(frozen=True)
class TableConvertOptions(ConvertOptions):
    """Everything `convert_table` needs; see `jobs/convert_table.py --help` for each field."""

    output: str
    label: str
    input: str | None = None
    format: str = "csv"
    table: str | None = None
    schema: str | None = None  # Spark DDL, e.g. "a INT, b STRING"
    csv_null_value: str = ""  # CSV: the text that means null (e.g. "NA")
    csv_mode: str = "permissive"  # CSV rows that do not parse: rejected and counted | rejected, not counted | stop
    csv_multiline: bool = False  # CSV: quoted values may hold newlines
    key: str | None = None
    task: str = "auto"
    null_policy: str = "keep"
    null_defaults: tuple[tuple[str, str], ...] = ()  # (column, value) overrides of the per-dtype default
    max_vocab: int = 100
    num_quantiles: int = 10
    quantile_sample_rows: int = QUANTILE_SAMPLE_ROWS  # quantiles from a 1-in-k row sample of about this many rows

    def __post_init__(self) -> None:
        if (self.input is None) == (self.table is None):
            raise OptionError("give exactly one of --input PATH and --table NAME")
        if not self.output:
            raise OptionError("--output is required")
        super().__post_init__()
        if self.format not in FORMATS:
            raise OptionError(f"--format must be one of {', '.join(FORMATS)}, got {self.format!r}")
        if self.task not in TASKS:
            raise OptionError(f"--task must be one of {', '.join(TASKS)}, got {self.task!r}")
        if self.csv_mode not in CSV_MODES:
            raise OptionError(f"--csv-mode must be one of {', '.join(CSV_MODES)}, got {self.csv_mode!r}")
        if self.null_policy not in NULL_POLICIES:
            raise OptionError(f"--null-policy must be one of {', '.join(NULL_POLICIES)}, got {self.null_policy!r}")
        if self.max_vocab < 1 or self.num_quantiles < 2:
            raise OptionError("--max-vocab must be >= 1 and --num-quantiles >= 2")
        if self.quantile_sample_rows < 1:
            raise OptionError(f"--quantile-sample-rows must be >= 1, got {self.quantile_sample_rows}")
