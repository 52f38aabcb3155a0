"""Label names read back exactly as they print: control characters and look-alike names are refused."""

from __future__ import annotations

import json
import unicodedata

import pytest

from conversion.images.convert import convert_images
from conversion.images.options import ImageConvertOptions
from dataset.errors import OptionError
from dataset.versions import read_manifest
from tests.images import image_bytes, write

NFC = unicodedata.normalize("NFC", "café")
NFD = unicodedata.normalize("NFD", "café")


def test_control_characters_and_normalization_twins_are_rejected_with_reasons(spark, tmp_path):
    root = tmp_path / "in"
    labels = {"dog": 8, "line\nbreak": 1, "tab\there": 1, NFC: 8, NFD: 1, 'Ünïcødé 狗, "quoted"': 8}
    for label, count in labels.items():
        for i in range(count):
            write(root, f"{label}/{i}.png", image_bytes("PNG", (6, 6), seed=i + 10 * len(label)))
    out = tmp_path / "out"
    summary = convert_images(spark, ImageConvertOptions(str(root), str(out), max_reject_fraction=0.2))
    manifest = read_manifest(str(out))
    assert manifest.labels == (NFC, "dog", 'Ünïcødé 狗, "quoted"')
    assert manifest.num_records == 24
    report = [json.loads(line) for line in (out / "_rejected" / "rejected.jsonl").read_text().splitlines()]
    assert [(r["path"], r["reason"]) for r in report] == [
        (f"{NFD}/0.png", "ambiguous_label_name"),
        ("line\nbreak/0.png", "bad_label_name"),
        ("tab\there/0.png", "bad_label_name"),
    ]
    assert report[0]["detail"] == (
        f"label folder {NFD!r} differs from {NFC!r} only in Unicode normalization; rename one of them"
    )
    assert report[1]["detail"] == "label folder 'line\\nbreak' holds control characters (U+000A); rename it"
    assert summary.rejected == {"ambiguous_label_name": 1, "bad_label_name": 2}
    assert "\n" not in "".join(manifest.labels)


def test_labels_option_with_control_characters_is_refused():
    with pytest.raises(OptionError, match="--labels holds control characters"):
        ImageConvertOptions("in", "out", labels=("a", "b\r"))
