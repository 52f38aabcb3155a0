"""TFDS metadata of a version: what `tfds.builder_from_directory(DATASET)` reads, written as plain JSON.

    dataset_info.json               name, version "N.0.0" (N: the dataset version), splits with their shard
                                    lengths and one file template each, record order kept (disableShuffling)
    features.json                   one TFDS feature per record key (FeaturesDict of flat keys)
    <key, / as .>.labels.txt        a ClassLabel's names, one a line, in id order

The formats are those tensorflow-datasets 4.9.4 writes and reads (`DatasetInfo.write_to_directory`); nothing
here imports TensorFlow or TFDS (conversion has neither). TFDS generates shard paths from a split's template:
`<folder>/<prefix>{SHARD_X_OF_Y}<suffix>` for shards 0..n-1 of n, all in one folder. A split whose shards lie in
several run folders (after an append) has no such template: then each run folder gets metadata for its own
shards (`tfds.builder_from_directories([...])` joins them) and the root gets none. TFDS reads no gzip shards
(its `TFRecordDataset` takes no compression): a gzip dataset gets no metadata.
"""

from __future__ import annotations

import json
import posixpath
import re
import sys
from dataclasses import dataclass
from typing import Any

from dataset.errors import DatasetError
from dataset.fs import replace_whole
from dataset.layout import DatasetFolder
from dataset.manifest import Manifest, ShardFile
from dataset.versions import Version, public_url, read_version

DATASET_INFO = "dataset_info.json"
FEATURES = "features.json"
LABELS_SUFFIX = ".labels.txt"
TFDS_PIN = "tensorflow-datasets==4.9.4"
_CLASSES = "tensorflow_datasets.core.features."
_SHARD_NUMBER = re.compile(r"-(\d{5})-of-(\d{5})")
_IMAGE_KEYS = ("image/encoded", "image/class/label", "image/filename")


def is_tfds_file(name: str) -> bool:
    """Whether a file name (no folder) is one this module writes."""
    return name in (DATASET_INFO, FEATURES) or name.endswith(LABELS_SUFFIX)


@dataclass(frozen=True)
class MetadataFolder:
    """The TFDS files of one folder of the dataset ("": the root): file name → bytes."""

    folder: str
    files: dict[str, bytes]


@dataclass(frozen=True)
class TfdsPlan:
    """What a version gets: metadata at the root, or per run folder, or none, with the line that says why."""

    root: MetadataFolder | None
    runs: tuple[MetadataFolder, ...] = ()
    refusal: str | None = None  # one line: why the root has no metadata for this version (None: it has)


def _class(name: str) -> str:
    return _CLASSES + name


def _tensor(dtype: str, dims: tuple[int, ...], kind: str = "tensor_feature.Tensor") -> dict[str, Any]:
    shape = {"dimensions": [str(d) for d in dims]} if dims else {}
    return {"pythonClassName": _class(kind), "tensor": {"dtype": dtype, "encoding": "none", "shape": shape}}


def _text() -> dict[str, Any]:
    return {"pythonClassName": _class("text_feature.Text"), "text": {}}


def _class_label(count: int) -> dict[str, Any]:
    return {"pythonClassName": _class("class_label_feature.ClassLabel"), "classLabel": {"numClasses": str(count)}}


def labels_file(key: str) -> str:
    """Where TFDS looks for the names of ClassLabel `key`: `image/class/label` → `image.class.label.labels.txt`."""
    return key.replace("/", ".") + LABELS_SUFFIX


def _names_text(names: tuple[str, ...]) -> bytes | None:
    """A labels file, or None when TFDS would read other names back (it strips lines, drops empty ones)."""
    if not names or any(not n or n != n.strip() or "\n" in n or "\r" in n for n in names):
        return None
    return ("\n".join(names) + "\n").encode("utf-8")


def _label_ids(manifest: Manifest) -> bool:
    """Whether a table's label column holds each record's class id: int64 values 0..n-1 named "0".."n-1"."""
    feature = manifest.features[manifest.label_feature]
    return feature.dtype == "int64" and manifest.labels == tuple(str(i) for i in range(len(manifest.labels)))


def render_features(manifest: Manifest) -> tuple[dict[str, Any], dict[str, bytes]]:
    """`features.json` of a manifest's records and its labels files (file name → bytes).

    Images: `image/encoded` Image (TFDS decodes to 3 channels unless read with `SkipDecoding`), `image/class/label`
    ClassLabel with the manifest's names, `image/filename` Text. Tables: one feature per column; a scalar left out
    of some records (`null_count`) and a list column are `Tensor(shape=(None,))` (a missing value reads as an
    empty list: TFDS 4.9.4 has no default for a missing scalar); a classification label stored as its class id
    is a ClassLabel, one stored as text keeps its type (TFDS maps no text to an id).
    """
    features: dict[str, Any] = {}
    labels: dict[str, bytes] = {}
    if manifest.kind == "images":
        features["image/encoded"] = {
            "pythonClassName": _class("image_feature.Image"),
            "image": {"dtype": "uint8", "shape": {"dimensions": ["-1", "-1", "3"]}},
        }
        features["image/filename"] = _text()
        names = _names_text(manifest.labels)
        if names is not None:
            features["image/class/label"] = _class_label(len(manifest.labels))
            labels[labels_file("image/class/label")] = names
        else:
            features["image/class/label"] = _tensor("int64", (), "scalar.Scalar")
    else:
        classified = manifest.table is not None and manifest.table.task == "classification"
        for name, info in manifest.features.items():
            names = _names_text(manifest.labels) if classified and name == manifest.label_feature else None
            if names is not None and _label_ids(manifest):
                features[name] = _class_label(len(manifest.labels))
                labels[labels_file(name)] = names
            elif info.length != "fixed" or info.null_count:
                features[name] = _tensor(info.dtype, (-1, *info.shape))
            elif info.shape:
                features[name] = _tensor(info.dtype, info.shape)
            elif info.dtype == "string" and info.spark_type != "binary":
                features[name] = _text()
            else:
                features[name] = _tensor(info.dtype, (), "scalar.Scalar")
    document = {
        "featuresDict": {"features": dict(sorted(features.items()))},
        "pythonClassName": _class("features_dict.FeaturesDict"),
    }
    return document, labels


def shard_template(names: list[str]) -> str | None:
    """The TFDS file template of shard file names `names` (in manifest order) of one folder, if TFDS can generate
    exactly these names from it: one pattern, numbers 0..n-1 of n in order."""
    match = _SHARD_NUMBER.search(names[0]) if names else None
    if match is None:
        return None
    template = names[0][: match.start()] + "-{SHARD_X_OF_Y}" + names[0][match.end() :]
    count = len(names)
    wanted = [template.replace("{SHARD_X_OF_Y}", f"{i:05d}-of-{count:05d}") for i in range(count)]
    return template if wanted == names and "{" not in template.replace("{SHARD_X_OF_Y}", "") else None


def one_template(files: tuple[ShardFile, ...]) -> bool:
    """Whether a split's shards lie in one folder under one template (what TFDS can describe)."""
    if not files:
        return True
    return len({posixpath.dirname(f.path) for f in files}) == 1 and (
        shard_template([posixpath.basename(f.path) for f in files]) is not None
    )


def _by_folder(files: tuple[ShardFile, ...]) -> dict[str, list[ShardFile]]:
    """A split's shards grouped by their folder ("": the root), folders in order of first appearance."""
    grouped: dict[str, list[ShardFile]] = {}
    for shard in files:
        grouped.setdefault(posixpath.dirname(shard.path), []).append(shard)
    return grouped


def dataset_name(manifest: Manifest) -> str:
    """The TFDS dataset name: from the kind only, so the metadata is a function of the version, not of where the
    folder lies (a copied or moved dataset reads the same)."""
    return f"tfrecordpipe_{manifest.kind}"


def _info(name: str, version: Version, splits: list[dict[str, Any]]) -> bytes:
    document: dict[str, Any] = {
        "description": f"tfrecordpipe dataset version {version.number} (manifest sha256 {version.sha256})",
        "disableShuffling": True,  # manifest order, as the manifest's own readers give it
        "fileFormat": "tfrecord",
        "name": name,
        "splits": splits,
        "version": f"{version.number}.0.0",
    }
    if version.manifest.kind == "images":
        document["supervisedKeys"] = {
            "tuple": {"items": [{"featureKey": "image/encoded"}, {"featureKey": "image/class/label"}]}
        }
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _split_entry(split: str, template: str, shards: list[ShardFile]) -> dict[str, Any]:
    return {
        "filepathTemplate": template,
        "name": split,
        "numBytes": str(sum(f.bytes for f in shards)),
        "shardLengths": [str(f.num_records) for f in shards],
    }


def plan_metadata(data_url: str, version: Version) -> TfdsPlan:
    """The TFDS metadata of `version` of the dataset at `data_url`: at the root when every split's shards share
    one folder and one name pattern; else in each run folder for its own shards (when every shard lies in a run
    folder under a pattern), with the one line saying why the root has none."""
    manifest = version.manifest
    shown = public_url(data_url)
    if manifest.compression != "none":
        return TfdsPlan(
            None,
            refusal=f"version {version.number} of {shown}: no TFDS metadata: its shards are {manifest.compression} "
            "and TFDS reads only uncompressed TFRecord files; convert again with --compression none",
        )
    features, labels = render_features(manifest)
    common = {FEATURES: (json.dumps(features, indent=4, sort_keys=True) + "\n").encode("utf-8"), **labels}
    name = dataset_name(manifest)
    root_splits: list[dict[str, Any]] = []
    per_folder: dict[str, list[dict[str, Any]]] = {}
    spans: list[str] = []
    odd: list[str] = []
    for split, info in sorted(manifest.splits.items()):
        grouped = _by_folder(info.files)
        for folder, shards in grouped.items():
            template = shard_template([posixpath.basename(f.path) for f in shards])
            if template is None:
                odd.append(f"split {split!r} in {folder or 'the root'}")
                continue
            per_folder.setdefault(folder, []).append(_split_entry(split, template, shards))
            if len(grouped) == 1:
                root_splits.append(_split_entry(split, f"{folder}/{template}" if folder else template, shards))
        if len(grouped) > 1:
            spans.append(f"split {split!r} spans run folders {', '.join(f or '(root)' for f in grouped)}")
    if odd:
        return TfdsPlan(
            None,
            refusal=f"version {version.number} of {shown}: no TFDS metadata: the shard names of "
            f"{'; '.join(odd)} do not follow one <split>-NNNNN-of-NNNNN pattern, which TFDS needs; run "
            f"`python jobs/compact.py --data {shown} --whole-splits`",
        )
    if not spans:
        return TfdsPlan(MetadataFolder("", {**common, DATASET_INFO: _info(name, version, root_splits)}))
    runs = tuple(
        MetadataFolder(folder, {**common, DATASET_INFO: _info(name, version, entries)})
        for folder, entries in per_folder.items()  # manifest order: TFDS reads the folders' shards in this order
    )
    folders = [folder_url(data_url, run.folder) for run in runs]
    readable = "" not in per_folder
    return TfdsPlan(
        None,
        runs if readable else (),
        f"version {version.number} of {shown}: {'; '.join(spans)}; TFDS needs one file template per split: run "
        f"`python jobs/compact.py --data {shown} --whole-splits` (then the root metadata is written)"
        + (f" or read with tfds.builder_from_directories({folders!r})" if readable else ""),
    )


def folder_url(data_url: str, relpath: str) -> str:
    """The public URL of a folder of the dataset (what a user passes to TFDS)."""
    return public_url(f"{data_url.rstrip('/')}/{relpath}")


def _put(folder: DatasetFolder, relpath: str, data: bytes) -> None:
    """Write a file so that a reader sees all of it or none."""
    replace_whole(folder.fs, folder.path(relpath), data)


def _remove_tfds_files(folder: DatasetFolder, relpath: str, keep: frozenset[str] = frozenset()) -> None:
    """Remove the TFDS files of one folder of the dataset ("": the root), `dataset_info.json` first."""
    fs, path = folder.fs, folder.path(relpath) if relpath else folder.root
    fs.invalidate_cache(path)
    try:
        names = [posixpath.basename(p.rstrip("/")) for p in fs.ls(path, detail=False)]
    except FileNotFoundError:
        return
    doomed = sorted((n for n in names if is_tfds_file(n) and n not in keep), key=lambda n: n != DATASET_INFO)
    for name in doomed:
        fs.rm(f"{path}/{name}")


def _write_folder(folder: DatasetFolder, meta: MetadataFolder) -> None:
    """Replace one folder's TFDS files: the old `dataset_info.json` goes first and the new one is written last,
    so a reader (or a write that fails half way) never finds one describing a version with another's files."""
    _remove_tfds_files(folder, meta.folder)
    prefix = f"{meta.folder}/" if meta.folder else ""
    for name, data in sorted(meta.files.items(), key=lambda item: item[0] == DATASET_INFO):
        _put(folder, prefix + name, data)


def _folders(manifest: Manifest) -> set[str]:
    """The run folders holding a manifest's shards."""
    return {posixpath.dirname(f.path) for s in manifest.splits.values() for f in s.files} - {""}


def write_metadata(data_url: str, version: Version) -> str | None:
    """Write `version`'s TFDS metadata (see `plan_metadata`) after its commit; the line saying why the root has
    none, or None. The root never keeps metadata of another version: it is removed before anything is written; nor
    do the run folders of the parent version (per-run metadata lives only in the current version's run folders)."""
    folder = DatasetFolder(data_url)
    plan = plan_metadata(data_url, version)
    if plan.root is None:
        _remove_tfds_files(folder, "")
    listed = _folders(version.manifest)
    if version.info.parent is not None:  # per-run metadata is written for one version and cleared by the next
        try:
            listed |= _folders(read_version(data_url, version.info.parent).manifest)
        except DatasetError:
            pass  # the parent is vacuumed: so are the run folders only it listed
    for run in sorted(listed - {meta.folder for meta in plan.runs}):
        _remove_tfds_files(folder, run)  # a run folder the root describes, or of another version, or none can
    for meta in plan.runs:
        _write_folder(folder, meta)
    if plan.root is not None:
        _write_folder(folder, plan.root)
    return plan.refusal


def publish_metadata(data_url: str, version: Version) -> None:
    """`write_metadata` as a commit runs it, after the version is committed: the line why the root has no metadata,
    or why none could be written, goes to stderr (the commit stands either way)."""
    try:
        refusal = write_metadata(data_url, version)
    except OSError as err:
        shown = public_url(data_url)
        refusal = (
            f"version {version.number} of {shown} is committed without TFDS metadata ({err}); write it with "
            f"`python jobs/versions.py --data {shown} --tfds`"
        )
    if refusal is not None:
        print(f"tfds: {refusal}", file=sys.stderr, flush=True)


def write_current_metadata(data_url: str) -> tuple[Version, str | None]:
    """Write the TFDS metadata of the current version (datasets converted before it was written); no shard is
    touched. The version and the line saying why the root has none (None: the root has it)."""
    version = read_version(data_url)
    return version, write_metadata(data_url, version)


def tfds_directory(data_url: str) -> str:
    """The folder to give `tfds.builder_from_directory`: the dataset folder, once its root metadata describes the
    current version.

    Raises:
        DatasetError: the current version cannot be described at the root (the one line why), or the root
            metadata is missing or describes another version.
    """
    version = read_version(data_url)
    plan = plan_metadata(data_url, version)
    if plan.refusal is not None:
        raise DatasetError(plan.refusal)
    folder = DatasetFolder(data_url)
    try:
        stored = json.loads(folder.fs.cat_file(folder.path(DATASET_INFO)))
    except (FileNotFoundError, ValueError):  # missing, or cut/edited by hand: not this version's metadata
        stored = {}
    if not isinstance(stored, dict):
        stored = {}
    if stored.get("version") != f"{version.number}.0.0":
        raise DatasetError(
            f"{public_url(data_url)} has no TFDS metadata of its version {version.number}; write it with "
            f"`python jobs/versions.py --data {public_url(data_url)} --tfds`"
        )
    return public_url(folder.url.rstrip("/"))
