"""The columnar listing, discovery and plan decide exactly what the per-file rules decide.

`tests/plan_reference.py` holds the rules as they were written before the plan became columns (a Python
object per file): the columnar code must agree with them on every path, split, shard, order and skip reason,
including the awkward paths (hidden folders, case and dots in extensions, Unicode and control characters
in labels, unknown sizes, seeds, fixed labels, split folders).
"""

from __future__ import annotations

import pickle
import random

import numpy as np
import pytest

from conversion.images.discovery import discover
from conversion.images.options import ImageConvertOptions
from conversion.images.plan import PathKeys, ShardFiles, group_into_tasks, path_hashes, plan_shards, split_codes
from conversion.images.task_plans import TaskPlan, remove_task_plans, write_task_plans
from conversion.splits import assign_split, split_bounds, split_of
from dataset.fs import ListedFile
from dataset.listing import Listing
from tests.plan_reference import reference_discover, reference_group, reference_plan

SPLITS = (("train", 0.8), ("validation", 0.1), ("test", 0.1))

# --------------------------------------------------------------------------- awkward listings

NAMES = ["a", "b", "c d", "é", "e\u0301", "tab\there", "new\nline", "Z", "ünï", "日本", "x.y", "_u", "-", "a!b", "a.b"]
LEAVES = ["x.png", "y.JPG", "z.JpEg", "w.webp", "v.GIF", "u.bmp", "t.txt", "s.png.txt", ".h.png", "r", "q.", "p..png"]
LEAVES += ["o.PnG", "n.jpeg ", "m.jpg/", "ℹ.png", "l.tiff", "K.jpg", "k.\u212ag", "j.pnġ", "i.jpe"]


def awkward_listing(rng: random.Random, n: int, split_folders: bool = False) -> list[ListedFile]:
    files: dict[str, ListedFile] = {}
    while len(files) < n:
        parts = [rng.choice(NAMES)]
        if split_folders:
            parts.insert(0, rng.choice(["train", "test", "val", ".x"]))
        parts += [rng.choice(["sub", ".hid", "deep/er", "é"]) for _ in range(rng.choice([0, 0, 0, 1, 2]))]
        parts.append(f"{rng.randrange(10**6)}{rng.choice(LEAVES)}")
        relpath = "/".join(parts[rng.choice([0, 0, 0, 0, 1]) :]) if len(parts) > 1 else parts[0]
        relpath = relpath.rstrip("/") or "top.png"
        roll = rng.random()
        if roll < 0.02:
            files[relpath] = ListedFile(relpath, -1, "not_a_regular_file", "a FIFO, not a regular file: not read")
        elif roll < 0.04:
            files[relpath] = ListedFile(relpath, -1)
        else:
            files[relpath] = ListedFile(relpath, rng.choice([0, 1, 1000, 1000, rng.randrange(10**6)]))
    listed = list(files.values())
    rng.shuffle(listed)
    return listed


def columnar(files, labels=None, split_from_folders=False, **options):
    found = discover(files, labels, split_from_folders)
    opts = ImageConvertOptions("in", "out", split_from_folders=split_from_folders, **options)
    plans = plan_shards(found.candidates, found.labels, opts)
    skips = [(s.relpath, s.reason, s.detail) for s in found.skipped]
    return found, [(p.split, p.index, p.num_shards, [tuple(f) for f in p.files]) for p in plans], skips


@pytest.mark.parametrize("seed", range(6))
def test_columnar_discovery_and_plan_match_the_per_file_rules(seed):
    rng = random.Random(seed)
    files = awkward_listing(rng, 3000, split_folders=seed >= 4)
    split_from_folders = seed >= 4
    labels = ("b", "a", "é", "日本", "nowhere") if seed == 3 else None
    options = {"num_shards": rng.choice([None, 1, 3, 7])}
    if not split_from_folders:
        options["splits"] = rng.choice(
            [
                (("train", 0.8), ("validation", 0.1), ("test", 0.1)),
                (("all", 1.0),),
                (("a", 0.5), ("b", 0.0), ("c", 0.5)),
            ]
        )
    if options["num_shards"] is None:
        options["target_shard_mb"] = 0.05
    shard_seed = rng.choice([0, 0, 7])

    found, plans, skips = columnar(files, labels, split_from_folders, seed=shard_seed, **options)
    candidates, ref_skips, ref_labels = reference_discover(files, labels, split_from_folders)
    assert found.labels == ref_labels and found.num_files_seen == len(files)
    assert skips == ref_skips
    assert [tuple(c) for c in found.candidates] == sorted(candidates)
    opts = ImageConvertOptions("in", "out", split_from_folders=split_from_folders, seed=shard_seed, **options)
    assert plans == reference_plan(candidates, found.labels, opts)
    assert {reason for _, reason, _ in skips} >= {
        "hidden",
        "unsupported_extension",
        "not_a_regular_file",
        "bad_label_name",
    }


def test_equal_hashes_fall_back_to_path_order(monkeypatch):
    # No two paths share a 64-bit hash in practice: force the ties by giving every file one shard and order hash.
    files = [ListedFile(f"a/{i}.png", 10) for i in range(50)]
    found = discover(files)
    options = ImageConvertOptions("in", "out", splits=(("train", 1.0),), num_shards=3)
    keys = PathKeys.of(found.candidates.relpaths, 0, options.splits)
    keys.shard[:] = 5
    keys.order[:] = 9
    monkeypatch.setattr(PathKeys, "of", classmethod(lambda cls, *args: keys))
    plans = plan_shards(found.candidates, found.labels, options)
    paths = sorted(f.relpath for f in files)
    assert [[f.relpath for f in p.files] for p in plans] == [paths[0::3], paths[1::3], paths[2::3]]


def test_listing_sorts_by_code_point_and_keeps_the_last_of_a_path_listed_twice():
    files = [ListedFile("b/é.png", 1), ListedFile("b/z.png", 2), ListedFile("a/x.png", 3), ListedFile("b/z.png", 4)]
    files.append(ListedFile("b/\U0001f600.png", 5, "not_a_regular_file", "a socket"))
    listing = Listing.of(files)
    assert list(listing) == [
        ListedFile("a/x.png", 3),
        ListedFile("b/z.png", 4),
        ListedFile("b/é.png", 1),
        ListedFile("b/\U0001f600.png", 5, "not_a_regular_file", "a socket"),
    ]


def test_a_shard_pickles_only_its_own_files_and_reads_back_equal(tmp_path):
    found = discover([ListedFile(f"l{i % 3}/{i:06d}.jpg", 1000 + i) for i in range(30_000)])
    plans = plan_shards(found.candidates, found.labels, ImageConvertOptions("in", "out", num_shards=10))
    one = plans[0]
    assert isinstance(one.files, ShardFiles) and len(one.files) < 1000
    assert len(pickle.dumps(one)) < 60 * len(one.files)  # its rows only, not the 30,000 of the table it views
    assert pickle.loads(pickle.dumps(one)) == one

    tasks = group_into_tasks(plans, 4)
    as_tuples = [tuple((p.split, p.index, p.num_shards, [tuple(f) for f in p.files]) for p in task) for task in tasks]
    reference = reference_plan(
        [tuple(c) for c in found.candidates], found.labels, ImageConvertOptions("in", "out", num_shards=10)
    )
    assert as_tuples == reference_group(reference, 4)
    refs = write_task_plans(tasks, str(tmp_path))
    assert [len(pickle.dumps(ref)) < 400 for ref in refs] == [True] * 4
    assert [list(ref) for ref in refs] == [list(task) for task in tasks]
    assert [ref.num_files for ref in refs] == [sum(len(p.files) for p in task) for task in tasks]
    assert pickle.loads(pickle.dumps(refs[0])) == refs[0] and isinstance(refs[0], TaskPlan)
    remove_task_plans(str(tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_sha256_rows_match_path_hashes():
    paths = sorted(["a/x.png", "é/ü.jpg", "日本/1.png", "", "b/y.png", "c/z.png"])
    relpaths = Listing.of([ListedFile(p, 1) for p in paths]).relpaths
    for seed in (0, 3):
        keys = PathKeys.of(relpaths, seed, SPLITS)
        assert keys.split is not None
        assert [SPLITS[code][0] for code in keys.split.tolist()] == [assign_split(p, SPLITS) for p in paths]
        hashes = [path_hashes(p, seed)[1:] for p in paths]
        assert list(zip(keys.shard.tolist(), keys.order.tolist())) == hashes
    assert PathKeys.of(relpaths).split is None


def test_split_codes_follow_split_of_at_the_bounds():
    splits = (("a", 0.5), ("b", 0.0), ("c", 0.5))
    bounds = split_bounds(splits)
    positions = sorted({0, 1, 2**63 - 1, 2**63, 2**63 + 1, 2**64 - 1, *(b + d for b in bounds for d in (-1, 0, 1))})
    positions = [p for p in positions if 0 <= p < 2**64]
    codes = split_codes(np.array(positions, dtype=np.uint64), splits)
    assert [splits[c][0] for c in codes.tolist()] == [split_of(p, splits, bounds) for p in positions]
