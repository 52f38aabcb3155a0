"""Turning a listing into labelled candidate images and skipped files (with reasons)."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import NamedTuple

from dataset.errors import ConversionError
from dataset.features import has_image_extension, is_hidden
from dataset.fs import ListedFile

# Reasons for files that are images but whose label is refused: they count as rejected images.
LABEL_REASONS = ("unknown_label", "bad_label_name", "ambiguous_label_name")


class Candidate(NamedTuple):  # a NamedTuple: built and pickled per file, so kept cheap
    """A file that looks like an image in a label folder; `split` is set by folder trees only."""

    relpath: str
    size: int
    label: str
    split: str | None = None


@dataclass(frozen=True)
class Skip:
    """A listed file that is not converted, and why."""

    relpath: str
    reason: str
    detail: str = ""


@dataclass(frozen=True)
class Discovery:
    candidates: tuple[Candidate, ...]
    skipped: tuple[Skip, ...]
    labels: tuple[str, ...]
    num_files_seen: int


def discover(
    files: list[ListedFile], labels: tuple[str, ...] | None = None, split_from_folders: bool = False
) -> Discovery:
    """Classify listed files: `ROOT/<label>/**/<file>` (or `ROOT/<split>/<label>/**/<file>`).

    Labels are the sorted distinct label folders holding image files, or the fixed `labels`
    (then other folders are rejected as `unknown_label`). Hidden files and folders, files
    outside label folders and other extensions are skipped and reported.

    Raises:
        ConversionError: no file is a candidate image.
    """
    depth = 3 if split_from_folders else 2
    candidates: list[Candidate] = []
    skipped: list[Skip] = []
    for listed in files:
        parts = listed.relpath.split("/")
        if listed.problem:
            skipped.append(Skip(listed.relpath, listed.problem, listed.detail))
        elif is_hidden(listed.relpath):
            skipped.append(Skip(listed.relpath, "hidden", "hidden file or folder"))
        elif len(parts) < depth:
            where = "ROOT/<split>/<label>/" if split_from_folders else "ROOT/<label>/"
            skipped.append(Skip(listed.relpath, "outside_label_folder", f"not under {where}"))
        elif not has_image_extension(listed.relpath):
            skipped.append(Skip(listed.relpath, "unsupported_extension", "not .jpg .jpeg .png .gif .bmp .webp"))
        elif split_from_folders:
            candidates.append(Candidate(listed.relpath, listed.size, parts[1], parts[0]))
        else:
            candidates.append(Candidate(listed.relpath, listed.size, parts[0]))
    candidates, refused = _refuse_bad_label_names(candidates)
    skipped.extend(refused)
    if labels is None:
        labels = tuple(sorted({c.label for c in candidates}))
    else:
        known = set(labels)
        skipped.extend(
            Skip(c.relpath, "unknown_label", f"label folder {c.label!r} is not in --labels")
            for c in candidates
            if c.label not in known
        )
        candidates = [c for c in candidates if c.label in known]
    if not candidates:
        raise ConversionError(
            f"no image files found in {len(files)} listed files; expected ROOT/<label>/<file>.jpg|png|... "
            "(see the rejected reasons with --max-reject-fraction 1)"
            if files
            else "the input folder is empty; expected ROOT/<label>/<file>.jpg|png|..."
        )
    return Discovery(tuple(candidates), tuple(sorted(skipped, key=lambda s: s.relpath)), labels, len(files))


def _control_characters(label: str) -> str:
    return ", ".join(f"U+{ord(ch):04X}" for ch in label if unicodedata.category(ch) == "Cc")


def _refuse_bad_label_names(candidates: list[Candidate]) -> tuple[list[Candidate], list[Skip]]:
    """Refuse label folders whose names would not read back as they print.

    A name with control characters (a newline, a tab...) breaks every line-based report and
    prints unlike itself: its files are rejected as `bad_label_name`. Two names that differ only
    in Unicode normalization (NFC "é" and NFD "e"+U+0301) print identically but are two labels:
    the NFC one (else the first in code-point order) is kept, the other's files are rejected as
    `ambiguous_label_name`, so that the user renames one folder rather than get two classes that
    look the same.
    """
    by_form: dict[str, list[str]] = {}
    for label in sorted({c.label for c in candidates}):
        by_form.setdefault(unicodedata.normalize("NFC", label), []).append(label)
    refused: dict[str, tuple[str, str]] = {}
    for form, names in by_form.items():
        keep = form if form in names else names[0]
        for name in names:
            if name != keep:
                refused[name] = (
                    "ambiguous_label_name",
                    f"label folder {name!r} differs from {keep!r} only in Unicode normalization; rename one of them",
                )
    for label in by_form.values():
        for name in label:
            bad = _control_characters(name)
            if bad:
                refused[name] = ("bad_label_name", f"label folder {name!r} holds control characters ({bad}); rename it")
    kept = [c for c in candidates if c.label not in refused]
    skips = [Skip(c.relpath, *refused[c.label]) for c in candidates if c.label in refused]
    return kept, skips
