"""The `trained_on` list of metrics.json: one entry per dataset version a model dir was trained on.

metrics.json keeps its top-level fields for the latest run (what readers have always read); its
`trained_on` list grows across continued runs. Each entry: the lineage (`data`: URL, version,
manifest sha256), the `steps` trained on that version, the `global_step` reached, and the evaluation
(`eval_split`, `eval`) after it. Consecutive runs on the same version (a resume, more epochs) add to
that version's entry; a run that trains no step adds none.
"""

from __future__ import annotations

import json
from typing import Any

from dataset.errors import TrainingError
from dataset.versions import public_url
from training.model_spec import read_text

METRICS_FILE = "metrics.json"


def earlier_entries(model_dir: str) -> list[dict[str, Any]]:
    """The `trained_on` list of the metrics.json in `model_dir` ([] without one); a metrics.json written before the
    list existed gives one entry from its lineage.

    Raises:
        TrainingError: the file is not JSON.
    """
    url = f"{model_dir.rstrip('/')}/{METRICS_FILE}"
    text = read_text(url)
    if text is None:
        return []
    try:
        written = json.loads(text)
    except ValueError as err:
        raise TrainingError(
            f"{public_url(url)} is not JSON ({err}); move it away to continue training in {public_url(model_dir)}"
        ) from err
    if "trained_on" in written:
        return list(written["trained_on"])
    if "data" in written:  # one run before the list: what it says of itself
        keys = ("data", "global_step", "eval_split", "eval")
        return [dict({k: written[k] for k in keys if k in written}, steps=written.get("steps_run", 0))]
    return []


def with_entry(entries: list[dict[str, Any]], entry: dict[str, Any]) -> list[dict[str, Any]]:
    """`entries` with this run's `entry` (its `steps` may be 0) appended, or added to the last entry when that one is
    of the same version."""
    if entry["steps"] == 0:
        return list(entries)
    if entries and entries[-1]["data"] == entry["data"]:
        merged = dict(entries[-1], **{k: v for k, v in entry.items() if k != "steps"})
        merged["steps"] = entries[-1].get("steps", 0) + entry["steps"]
        return [*entries[:-1], merged]
    return [*entries, entry]
