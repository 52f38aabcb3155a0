"""Listing an input tree never hangs nor fails on what is not a regular file: it reports it."""

from __future__ import annotations

import json
import os

from conversion.images.convert import convert_images
from conversion.images.options import ImageConvertOptions
from dataset.fs import ListedFile, list_files
from tests.images import image_bytes, write


def _tree(root):
    for label in ("a", "b"):
        for i in range(10):
            write(root, f"{label}/{i}.png", image_bytes("PNG", (6, 6), seed=i + 20 * (label == "b")))
    os.mkfifo(root / "a" / "pipe.jpg")  # reading it would block forever
    os.symlink(root, root / "b" / "loop")  # b/loop/b/loop/... forever
    os.symlink("../a", root / "b" / "alias")  # a link to a folder that is no ancestor: followed
    return root


def test_fifo_and_symlink_loop_are_listed_with_their_problem(tmp_path):
    root = _tree(tmp_path / "in")
    listed = {f.relpath: f for f in list_files(str(root))}
    assert listed["a/pipe.jpg"] == ListedFile(
        "a/pipe.jpg", -1, "not_a_regular_file", "a FIFO, not a regular file: not read"
    )
    assert listed["b/loop"] == ListedFile(
        "b/loop", -1, "symlink_loop", f"a link to {root}, a folder that contains it: not followed"
    )
    assert listed["b/alias/3.png"].problem == "" and listed["b/alias/3.png"].size > 0
    assert len(listed) == 20 + 10 + 3  # the images, those of a again under b/alias, two pipes and the loop


def test_conversion_skips_them_with_reasons(spark, tmp_path):
    root = _tree(tmp_path / "in")
    out = tmp_path / "out"
    summary = convert_images(spark, ImageConvertOptions(str(root), str(out)))
    report = {
        r["path"]: r["reason"] for r in map(json.loads, (out / "_rejected" / "rejected.jsonl").read_text().splitlines())
    }
    assert report == {
        "a/pipe.jpg": "not_a_regular_file",
        "b/alias/pipe.jpg": "not_a_regular_file",
        "b/loop": "symlink_loop",
    }
    assert sum(summary.records.values()) == 30
