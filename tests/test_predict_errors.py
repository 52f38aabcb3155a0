"""Prediction stops with one line on a label mismatch or an existing output, and reports bad images."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from conversion.images.convert import convert_images
from conversion.images.options import ImageConvertOptions
from dataset.errors import InferenceError
from inference.predict import predict_split
from jobs import predict as predict_job
from tests.images import corrupt_png, image_bytes, write

pytestmark = pytest.mark.slow


def _dataset(spark, root, labels):
    for label in labels:
        for split in ("train", "test"):
            for i in range(8):
                write(root / "in", f"{split}/{label}/{i}.png", image_bytes("PNG", (8, 8), seed=i + 10 * len(label)))
    options = ImageConvertOptions(str(root / "in"), str(root / "data"), split_from_folders=True, num_shards=1)
    convert_images(spark, options)
    return root / "data"


@pytest.fixture(scope="module")
def export(tiny_model):
    """A model trained 3 steps on labels a and b (tests/conftest.py: tiny_model)."""
    return tiny_model.metrics["export_path"]


def _job(capsys, *args) -> tuple[int, str, str]:
    code = predict_job.main(list(args))
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("error:") or "Traceback" in line]
    return code, "\n".join(errors), captured.out


def test_a_dataset_with_other_labels_is_refused_before_predicting(spark, export, tmp_path, capsys):
    other = _dataset(spark, tmp_path, ("a", "cat"))
    message = (
        f"the model's labels (a, b) are not those of dataset {other} (a, cat): not in the model: cat; "
        "not in the data: b; predict with a model trained on such data"
    )
    with pytest.raises(InferenceError) as info:
        predict_split(spark, export, str(other), "test")
    assert str(info.value) == message
    out = tmp_path / "predictions"
    assert _job(capsys, "--model", export, "--data", str(other), "--output", str(out))[:2] == (2, f"error: {message}")
    assert not out.exists()


def test_images_predict_with_bad_ones_reported_and_unknown_folders_refused(spark, export, tmp_path, capsys):
    images = tmp_path / "images"
    for i in range(3):
        write(images, f"a/{i}.png", image_bytes("PNG", (8, 8), seed=i))
    write(images, "b/corrupt.png", corrupt_png(4))
    write(images, "b/text.jpg", b"not a jpeg")
    write(images, "unlabelled.png", image_bytes("PNG", (8, 8), seed=9))
    os.mkfifo(images / "b" / "pipe.png")
    out = tmp_path / "predictions"
    code, err, printed = _job(capsys, "--model", export, "--images", str(images), "--output", str(out))
    assert (code, err) == (0, "")
    assert printed.strip().endswith("; 3 inputs could not be predicted (their reason is in the error column)")
    lineage, wrote = printed.splitlines()
    assert lineage.startswith(f"model {export}: trained on ") and " version 1 (manifest sha256 " in lineage
    assert wrote.startswith(f"Wrote 4 predictions to {out}; accuracy ")
    rows = pd.read_parquet(out).set_index("key").sort_index()
    assert list(rows.index) == [
        "a/0.png",
        "a/1.png",
        "a/2.png",
        "b/corrupt.png",
        "b/pipe.png",
        "b/text.jpg",
        "unlabelled.png",
    ]
    errors = rows["error"].to_dict()
    assert errors["b/corrupt.png"].startswith("undecodable: Invalid PNG data")
    assert errors["b/text.jpg"].startswith("undecodable: Unknown image file format")
    assert errors["b/pipe.png"] == "not_a_regular_file: a FIFO, not a regular file: not read"
    assert all(errors[key] is None for key in ("a/0.png", "a/1.png", "a/2.png", "unlabelled.png"))
    assert rows.loc["b/text.jpg", "predicted_label"] is None

    code, err, _ = _job(capsys, "--model", export, "--images", str(images), "--output", str(out))
    assert (code, err) == (
        2,
        f"error: --output {out} already exists; pass --mode overwrite to replace it or choose another --output",
    )
    write(images, "zebra/0.png", image_bytes("PNG", (8, 8), seed=5))
    code, err, _ = _job(capsys, "--model", export, "--images", str(images), "--output", str(out), "--mode", "overwrite")
    assert code == 2 and err.startswith("error: the model's labels (a, b) are not those of the label folders of ")
    assert err.endswith("(a, b, zebra): not in the model: zebra; predict with a model trained on such data")
    assert len(pd.read_parquet(out)) == 7  # the earlier output is untouched
