"""Turning a listing into labelled candidate images (as columns) and skipped files (with reasons).

The tests on every path (hidden, depth, extension) run on the listing's Arrow column; Python objects are
made only for the skipped files and for the distinct label folders.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from conversion.images.formats import EXTENSIONS, extensions_text, has_convertible_extension
from dataset.errors import ConversionError
from dataset.features import is_hidden
from dataset.listing import CHUNK, ListedFile, Listing

# Reasons for files that are images but whose label is refused: they count as rejected images.
LABEL_REASONS = ("unknown_label", "bad_label_name", "ambiguous_label_name")
# Reasons given before any image is read: they are reported but not counted as bad images.
SKIP_REASONS = (
    "hidden",
    "outside_label_folder",
    "unsupported_extension",
    "not_a_regular_file",
    "symlink_loop",
    "unreadable_folder",
)
# `has_convertible_extension` on a column: the extension after the last dot, ASCII letters in either case
# (no other character lowers to one of these letters, so this is `str.lower` exactly).
_IMAGE_SUFFIX = r"\.(" + "|".join("".join(f"[{c}{c.upper()}]" for c in ext[1:]) for ext in sorted(EXTENSIONS)) + r")$"


class Candidate(NamedTuple):
    """A file that looks like an image in a label folder; `split` is set by folder trees only."""

    relpath: str
    size: int
    label: str
    split: str | None = None


@dataclass(frozen=True, eq=False)
class Candidates:
    """The candidate images as columns, sorted by relative path.

    Row i is `relpaths[i]`, of `sizes[i]` bytes, in label folder `label_names[label_codes[i]]` and, for folder
    trees, split folder `split_names[split_codes[i]]`.
    """

    relpaths: pa.LargeStringArray
    sizes: np.ndarray  # int64
    label_names: tuple[str, ...]
    label_codes: np.ndarray  # int32
    split_names: tuple[str, ...] = ()
    split_codes: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.relpaths)

    def __iter__(self) -> Iterator[Candidate]:
        for start in range(0, len(self), CHUNK):
            stop = start + CHUNK
            paths = self.relpaths[start:stop].to_pylist()
            labels = [self.label_names[code] for code in self.label_codes[start:stop].tolist()]
            splits: list[str | None] = (
                [None] * len(paths)
                if self.split_codes is None
                else [self.split_names[code] for code in self.split_codes[start:stop].tolist()]
            )
            yield from map(Candidate, paths, self.sizes[start:stop].tolist(), labels, splits)


@dataclass(frozen=True)
class Skip:
    """A listed file that is not converted, and why."""

    relpath: str
    reason: str
    detail: str = ""


@dataclass(frozen=True)
class Discovery:
    candidates: Candidates
    skipped: tuple[Skip, ...]
    labels: tuple[str, ...]
    num_files_seen: int


def discover(
    files: Listing | Iterable[ListedFile],
    labels: tuple[str, ...] | None = None,
    split_from_folders: bool = False,
    allow_empty: bool = False,
) -> Discovery:
    """Classify listed files: `ROOT/<label>/**/<file>` (or `ROOT/<split>/<label>/**/<file>`).

    Labels are the sorted distinct label folders holding image files, or the fixed `labels`
    (then other folders are rejected as `unknown_label`). Hidden files and folders, files
    outside label folders and other extensions are skipped and reported.

    Raises:
        ConversionError: no file is a candidate image (unless `allow_empty`: an append's new files may hold none).
    """
    listing = files if isinstance(files, Listing) else Listing.of(files)
    depth = 3 if split_from_folders else 2
    paths = listing.relpaths
    candidate = _looks_like_image(listing, depth)
    skipped = [(row, _skip(listed, depth, split_from_folders)) for row, listed in _rows(listing, ~candidate)]
    rows = None if candidate.all() else np.flatnonzero(candidate)  # the listing's row of each candidate
    if rows is not None:
        paths = paths.take(pa.array(rows))
    (label_names, label_codes), (split_names, split_codes) = _folders(paths, split_from_folders)
    refused = _refused_labels(label_names)
    refused.update(_unknown_labels(label_names, labels, refused))
    kept = ~np.array([name in refused for name in label_names], dtype=bool)[label_codes]
    for position in np.flatnonzero(~kept).tolist():
        name = label_names[label_codes[position]]
        row = position if rows is None else int(rows[position])
        skipped.append((row, Skip(paths[position].as_py(), *refused[name])))
    if not kept.all():
        rows = np.flatnonzero(kept) if rows is None else rows[kept]
        paths, label_codes = paths.filter(pa.array(kept)), label_codes[kept]
        split_codes = split_codes[kept] if split_from_folders else split_codes
    label_names, label_codes = _used(label_names, label_codes)
    if labels is None:
        labels = label_names
    if not len(paths) and not allow_empty:
        raise ConversionError(
            f"no image files found in {len(listing)} listed files; expected ROOT/<label>/<file>.jpg|png|... "
            "(see the rejected reasons with --max-reject-fraction 1)"
            if len(listing)
            else "the input folder is empty; expected ROOT/<label>/<file>.jpg|png|..."
        )
    sizes = listing.sizes if rows is None else listing.sizes[rows]
    candidates = Candidates(
        paths, sizes, label_names, label_codes, split_names, split_codes if split_from_folders else None
    )
    return Discovery(candidates, tuple(skip for _, skip in sorted(skipped, key=lambda s: s[0])), labels, len(listing))


def _unknown_labels(
    names: tuple[str, ...], labels: tuple[str, ...] | None, refused: dict[str, tuple[str, str]]
) -> dict[str, tuple[str, str]]:
    """With fixed `labels`, the other label folders (not refused already), with (reason, detail)."""
    if labels is None:
        return {}
    known = set(labels)
    return {
        name: ("unknown_label", f"label folder {name!r} is not in --labels")
        for name in names
        if name not in known and name not in refused
    }


def _looks_like_image(listing: Listing, depth: int) -> np.ndarray:
    """Per row: no problem, not hidden, deep enough for a label folder, an image extension (`_skip` says why not)."""
    paths = listing.relpaths
    bad = pc.or_(pc.starts_with(paths, "."), pc.match_substring(paths, "/."))  # `is_hidden`
    bad = pc.or_(bad, pc.invert(pc.match_substring_regex(paths, "^(?:[^/]*/){%d}" % (depth - 1))))  # parts >= depth
    bad = pc.or_(bad, pc.invert(pc.match_substring_regex(paths, _IMAGE_SUFFIX)))
    if listing.problems:
        bad = pc.or_(bad, pc.is_in(paths, value_set=pa.array(list(listing.problems), pa.large_string())))
    return ~bad.to_numpy(zero_copy_only=False)


def _rows(listing: Listing, mask: np.ndarray) -> Iterator[tuple[int, ListedFile]]:
    """The rows of `listing` where `mask` is set, with their row numbers."""
    rows = np.flatnonzero(mask)
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        paths = listing.relpaths.take(pa.array(chunk)).to_pylist()
        for row, relpath, size in zip(chunk.tolist(), paths, listing.sizes[chunk].tolist()):
            problem = listing.problems.get(relpath)
            yield row, ListedFile(relpath, size, *problem) if problem else ListedFile(relpath, size)


def _skip(listed: ListedFile, depth: int, split_from_folders: bool) -> Skip:
    """Why a file that `_looks_like_image` refused is skipped."""
    if listed.problem:
        return Skip(listed.relpath, listed.problem, listed.detail)
    if is_hidden(listed.relpath):
        return Skip(listed.relpath, "hidden", "hidden file or folder")
    if len(listed.relpath.split("/")) < depth:
        where = "ROOT/<split>/<label>/" if split_from_folders else "ROOT/<label>/"
        return Skip(listed.relpath, "outside_label_folder", f"not under {where}")
    if not has_convertible_extension(listed.relpath):
        return Skip(listed.relpath, "unsupported_extension", f"not one of {extensions_text()}")
    raise AssertionError(f"{listed.relpath!r} looks like an image to Python but not to Arrow")  # pragma: no cover


Folders = tuple[tuple[str, ...], np.ndarray]  # the sorted distinct folder names, and each row's index (int32)


def _folders(paths: pa.Array, split_from_folders: bool) -> tuple[Folders, Folders]:
    """Each row's label folder, and split folder (folder trees; else none), read a chunk of rows at a time."""
    pattern = r"^(?P<split>[^/]*)/(?P<label>[^/]*)/" if split_from_folders else r"^(?P<label>[^/]*)/"
    fields = ("label", "split") if split_from_folders else ("label",)
    codes = {field: np.empty(len(paths), dtype=np.int32) for field in fields}
    seen: dict[str, dict[str, int]] = {field: {} for field in fields}  # name → code, in the order first seen
    for start in range(0, len(paths), CHUNK):
        parts = pc.extract_regex(paths[start : start + CHUNK], pattern)
        for field in fields:
            encoded = parts.field(field).dictionary_encode()
            names = seen[field]
            to_code = [names.setdefault(name, len(names)) for name in encoded.dictionary.to_pylist()]
            indices = encoded.indices.to_numpy(zero_copy_only=False)
            codes[field][start : start + len(indices)] = np.array(to_code, dtype=np.int32)[indices]
    found = {field: _sorted_codes(tuple(seen[field]), codes[field]) for field in fields}
    return found["label"], found.get("split", ((), np.zeros(0, dtype=np.int32)))


def _sorted_codes(names: tuple[str, ...], codes: np.ndarray) -> Folders:
    """`names` sorted, and `codes` renumbered to match."""
    order = sorted(range(len(names)), key=names.__getitem__)
    rank = np.empty(len(names), dtype=np.int32)
    rank[order] = np.arange(len(names), dtype=np.int32)
    return tuple(names[i] for i in order), np.take(rank, codes, out=codes) if len(codes) else codes


def _used(names: tuple[str, ...], codes: np.ndarray) -> Folders:
    """Only the names some row has, and the rows' codes into them."""
    used = np.flatnonzero(np.bincount(codes, minlength=len(names)))
    if len(used) == len(names):
        return names, codes
    renumber = np.zeros(len(names), dtype=np.int32)
    renumber[used] = np.arange(len(used), dtype=np.int32)
    return tuple(names[i] for i in used.tolist()), renumber[codes]


def _control_characters(label: str) -> str:
    return ", ".join(f"U+{ord(ch):04X}" for ch in label if unicodedata.category(ch) == "Cc")


def _refused_labels(names: Iterable[str]) -> dict[str, tuple[str, str]]:
    """Label folders whose names would not read back as they print, with (reason, detail).

    A name with control characters (a newline, a tab...) breaks every line-based report and
    prints unlike itself: its files are rejected as `bad_label_name`. Two names that differ only
    in Unicode normalization (NFC "é" and NFD "e"+U+0301) print identically but are two labels:
    the NFC one (else the first in code-point order) is kept, the other's files are rejected as
    `ambiguous_label_name`, so that the user renames one folder rather than get two classes that
    look the same.
    """
    by_form: dict[str, list[str]] = {}
    for label in sorted(set(names)):
        by_form.setdefault(unicodedata.normalize("NFC", label), []).append(label)
    refused: dict[str, tuple[str, str]] = {}
    for form, same in by_form.items():
        keep = form if form in same else same[0]
        for name in same:
            if name != keep:
                refused[name] = (
                    "ambiguous_label_name",
                    f"label folder {name!r} differs from {keep!r} only in Unicode normalization; rename one of them",
                )
    for same in by_form.values():
        for name in same:
            bad = _control_characters(name)
            if bad:
                refused[name] = ("bad_label_name", f"label folder {name!r} holds control characters ({bad}); rename it")
    return refused
