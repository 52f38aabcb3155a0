"""Turning a listing into labelled candidate images and skipped files (with reasons)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from dataset.errors import ConversionError
from dataset.features import has_image_extension, is_hidden
from dataset.fs import ListedFile


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
        if is_hidden(listed.relpath):
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
