"""The first difference between what a model dir was trained on and the version a run is about to read.

`first_difference` names it in words a user can act on (a new label, a changed vocabulary, a feature
added or removed, a dtype, the statistics a column bakes in); `changed_columns` lists the input columns
whose baked-in values differ, so that `--warm-start-from` leaves their variables fresh.
"""

from __future__ import annotations

from typing import Any

# The entries that change nothing the graph holds, left out of the comparison.
_IGNORED = frozenset({"format"})


def _quoted(values: list) -> str:
    return ", ".join(repr(v) for v in values)


def _plain(values: list) -> str:
    return ", ".join(str(v) for v in values) or "none"


def _label_difference(old: list[str], new: list[str], where: str, model: str) -> str | None:
    added = [x for x in new if x not in old]
    if added:
        noun = "label" if len(added) == 1 else "labels"
        return f"{where} has {noun} {_quoted(added)} that {model} was not trained on (labels: {_plain(old)})"
    removed = [x for x in old if x not in new]
    if removed:
        noun = "label" if len(removed) == 1 else "labels"
        return f"{where} lacks {noun} {_quoted(removed)} that {model} was trained on (labels: {_plain(old)})"
    if old != new:
        return f"{where} orders its labels {_plain(new)}; {model} was trained on {_plain(old)}"
    return None


def _feature_difference(old: dict, new: dict, where: str, model: str) -> str | None:
    for name in sorted(set(new) - set(old)):
        return f"{where} has feature {name!r} ({new[name]['dtype']}) that {model} was not trained on"
    for name in sorted(set(old) - set(new)):
        return f"{where} has no feature {name!r}, which {model} was trained on"
    for name in sorted(old):
        if old[name] != new[name]:
            return (
                f"{where} has feature {name!r} as {new[name]['dtype']} {new[name]['shape']}; "
                f"{model} was trained on it as {old[name]['dtype']} {old[name]['shape']}"
            )
    return None


def _column_difference(name: str, old: dict, new: dict, where: str, model: str) -> str | None:
    """One input column of a table model: its use, then what it bakes in."""
    what = f"column {name!r}"
    if "vocabulary" in old and "vocabulary" in new and old["vocabulary"] != new["vocabulary"]:
        before, after = old["vocabulary"], new["vocabulary"]
        added, removed = [v for v in after if v not in before], [v for v in before if v not in after]
        if added:
            return (
                f"{where} has value{'s' if len(added) > 1 else ''} {_quoted(added)} in the vocabulary of {what} "
                f"that {model} was not trained on (vocabulary: {_plain(before)})"
            )
        if removed:
            return (
                f"{where} lacks value{'s' if len(removed) > 1 else ''} {_quoted(removed)} in the vocabulary of "
                f"{what} that {model} was trained on (vocabulary: {_plain(before)})"
            )
        return (
            f"{where} orders the vocabulary of {what} (by count) as {_plain(after)}, giving other ids than "
            f"{model} was trained on ({_plain(before)})"
        )
    if "boundaries" in old and "boundaries" in new and len(old["boundaries"]) != len(new["boundaries"]):
        return (
            f"{where} has {len(new['boundaries']) + 1} buckets for {what}; {model} was trained with "
            f"{len(old['boundaries']) + 1} (boundaries {old['boundaries']})"
        )
    if "boundaries" in old and "boundaries" in new and old["boundaries"] != new["boundaries"]:
        return (
            f"{where} has bucket boundaries {new['boundaries']} for {what}; "
            f"{model} was trained on {old['boundaries']}"
        )
    if "mean" in old and "mean" in new and (old["mean"], old["stddev"]) != (new["mean"], new["stddev"]):
        return (
            f"{where} normalises {what} with mean {new['mean']!r} and stddev {new['stddev']!r}; "
            f"{model} was trained with mean {old['mean']!r} and stddev {old['stddev']!r}"
        )
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            return f"{where} uses {what} with {key} {new.get(key)!r}; {model} was trained with {old.get(key)!r}"
    return None


def first_difference(old: dict[str, Any], new: dict[str, Any], where: str, model: str) -> str | None:
    """What differs first between the recorded spec `old` and the spec `new` of the version to read, in words;
    None when the graph built for `new` is the graph the checkpoint holds.

    Args:
        where: how to name the version ("version 3 of DATA").
        model: how to name the model dir ("model dir M").
    """
    for key, noun in (("kind", "dataset kind"), ("task", "task"), ("label_column", "label column")):
        if old.get(key) != new.get(key):
            return f"{where} has {noun} {new.get(key)!r}; {model} was trained on {old.get(key)!r}"
    found = _label_difference(old.get("labels", []), new.get("labels", []), where, model)
    found = found or _feature_difference(old.get("features", {}), new.get("features", {}), where, model)
    if found:
        return found
    old_columns, new_columns = old.get("columns", {}), new.get("columns", {})
    for name in sorted(set(old_columns) | set(new_columns)):  # features cover the names; their uses remain
        if name in old_columns and name in new_columns:
            found = _column_difference(name, old_columns[name], new_columns[name], where, model)
            if found:
                return found
    if old.get("crosses") != new.get("crosses"):
        return f"{where} is trained with feature crosses {new.get('crosses')}; {model} with {old.get('crosses')}"
    old_params, new_params = old.get("params", {}), new.get("params", {})
    for key in sorted(set(old_params) | set(new_params)):
        if old_params.get(key) != new_params.get(key):
            return f"hyper-parameter {key} is {new_params.get(key)!r}; {model} was built with {old_params.get(key)!r}"
    for key in sorted((set(old) | set(new)) - _IGNORED):
        if old.get(key) != new.get(key):
            return f"{where} differs from what {model} was trained on in {key}"
    return None


def _change(old: float, new: float) -> str:
    return f"{(new - old) / abs(old) * 100:+.1f}%" if old else f"{new - old:+.3g}"


def moved_statistics(old: dict[str, Any], new: dict[str, Any], most: int = 3) -> str | None:
    """How far the normalisation and bucket boundaries of the version to read moved from those the model was built
    with, in a few words (`mean of 'age' +0.8%, stddev of 'age' -1.2%, boundaries of 'fare' and 2 more`); None when
    none moved."""
    moves = []
    old_columns, new_columns = old.get("columns", {}), new.get("columns", {})
    for name in sorted(set(old_columns) & set(new_columns)):
        before, after = old_columns[name], new_columns[name]
        for key in ("mean", "stddev"):
            if key in before and key in after and before[key] != after[key]:
                moves.append(f"{key} of {name!r} {_change(before[key], after[key])}")
        if before.get("boundaries", []) != after.get("boundaries", []):
            moves.append(f"boundaries of {name!r}")
    if not moves:
        return None
    more = f" and {len(moves) - most} more" if len(moves) > most else ""
    return ", ".join(moves[:most]) + more


def changed_columns(old: dict[str, Any], new: dict[str, Any]) -> set[str]:
    """The input columns whose use or baked-in values differ (or that only one side has)."""
    old_columns, new_columns = old.get("columns", {}), new.get("columns", {})
    return {name for name in set(old_columns) | set(new_columns) if old_columns.get(name) != new_columns.get(name)}
