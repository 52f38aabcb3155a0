"""Options of the table conversion, validated once at the edge and passed down whole."""

from __future__ import annotations

import json
from dataclasses import dataclass

from conversion.options import ConvertOptions
from dataset.errors import OptionError

OWNED_OPTIONS = ("mode", "columnnameofcorruptrecord", "inferschema", "path")  # set by the table job itself

FORMATS = ("csv", "parquet", "json", "orc")
TASKS = ("auto", "classification", "regression")
NULL_POLICIES = ("keep", "fill", "reject")  # keep: left out of the record, readers supply the default
CSV_MODES = ("permissive", "dropmalformed", "failfast")
ON_CHANGE = ("keep", "replace")  # --mode append: input files changed or deleted since the version (tables: keep)

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
    csv_multiline: bool = (
        False  # CSV: always read with multiLine (default: chosen per input, see dataset/table_reading.py)
    )
    read_options: tuple[tuple[str, str], ...] = ()  # (key, value) for Spark's DataFrameReader.option, in order
    key: str | None = None
    task: str = "auto"
    null_policy: str = "keep"
    null_defaults: tuple[tuple[str, str], ...] = ()  # (column, value) overrides of the per-dtype default
    max_vocab: int = 100
    num_quantiles: int = 10
    quantile_sample_rows: int = QUANTILE_SAMPLE_ROWS  # quantiles from a 1-in-k row sample of about this many rows
    on_change: str = "keep"  # --mode append: changed/deleted input files are kept as converted (replace: refused)

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
        if self.on_change not in ON_CHANGE:
            raise OptionError(f"--on-change must be one of {', '.join(ON_CHANGE)}, got {self.on_change!r}")
        if self.null_policy not in NULL_POLICIES:
            raise OptionError(f"--null-policy must be one of {', '.join(NULL_POLICIES)}, got {self.null_policy!r}")
        owned = sorted({k for k, _ in self.read_options if k.lower() in OWNED_OPTIONS})
        if owned:
            raise OptionError(
                f"--read-option {', '.join(owned)} is set by the job itself (PERMISSIVE mode, its corrupt-record "
                "column, its own type inference); use --csv-mode and --schema instead"
            )
        if any(not k or not k.replace("_", "").isalnum() for k, _ in self.read_options):
            raise OptionError(f"--read-option keys are option names such as sep or encoding, got {self.read_options}")
        if self.max_vocab < 1 or self.num_quantiles < 2:
            raise OptionError("--max-vocab must be >= 1 and --num-quantiles >= 2")
        if self.quantile_sample_rows < 1:
            raise OptionError(f"--quantile-sample-rows must be >= 1, got {self.quantile_sample_rows}")


def key_values(flag: str, items: list[str], what: str = "KEY=VALUE") -> tuple[tuple[str, str], ...]:
    """`["a=1", "sep=\\t"]` from a repeatable flag as ((key, value), ...), in order.

    Raises:
        OptionError: an item without `=`.
    """
    pairs = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise OptionError(f"{flag} {item!r} is not {what}")
        pairs.append((key, value))
    return tuple(pairs)


def read_options_from_json(text: str) -> tuple[tuple[str, str], ...]:
    """Reader options from a JSON object of strings (a notebook widget: `{"sep": "\\t", "comment": "#"}`).

    Raises:
        OptionError: not a JSON object of string values.
    """
    if not text.strip():
        return ()
    try:
        found = json.loads(text)
    except json.JSONDecodeError as err:
        raise OptionError(f'read_options {text!r} is not JSON ({err.msg}); write e.g. {{"sep": "\\t"}}') from None
    if not isinstance(found, dict) or not all(isinstance(v, str) for v in found.values()):
        raise OptionError(f'read_options {text!r} must be a JSON object of strings, e.g. {{"encoding": "latin1"}}')
    return tuple(found.items())
