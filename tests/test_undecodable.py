"""A record whose image does not decode: training names it, or skips and counts it; validate finds it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from conversion.images.convert import convert_images
from conversion.images.options import ImageConvertOptions, ImageTransform
from dataset.errors import TrainingError
from tests.images import corrupt_png, write
from training.config import TrainConfig
from training.run import run_training

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def damaged(spark, tmp_path_factory):
    """train and test splits (one shard each) of 2 labels, one undecodable image in each split,
    converted with --verify header (which lets them through)."""
    root = tmp_path_factory.mktemp("damaged")
    for split, count in (("train", 24), ("test", 8)):
        for label in ("a", "b"):
            for i in range(count):
                value = 40 if label == "a" else 210
                pixels = np.full((16, 16, 3), value, np.uint8)
                pixels[i % 16] = 255 - value
                out = root / "in" / split / label / f"{i:02d}.png"
                out.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(pixels).save(out)
    write(root / "in", "train/b/bad.png", corrupt_png(1))
    write(root / "in", "test/a/bad.png", corrupt_png(2))
    options = ImageConvertOptions(
        str(root / "in"),
        str(root / "data"),
        split_from_folders=True,
        num_shards=1,
        transform=ImageTransform(verify="header"),
    )
    convert_images(spark, options)
    return root / "data"


def _config(data, model_dir, **changes) -> TrainConfig:
    # 8 steps of 8 records: more than the 49 training records
    values = dict(data=str(data), model_dir=str(model_dir), batch_size=8, max_steps=8, eval_split="test", export=False)
    return TrainConfig(**dict(values, **changes))


def test_training_names_the_record_it_cannot_decode(spark, damaged, tmp_path):
    with pytest.raises(TrainingError) as info:
        run_training(spark, _config(damaged, tmp_path / "m", shuffle_buffer=1), num_proc=1)  # file order: meets it
    message = str(info.value)
    assert "\n" not in message
    assert "cannot decode the image of record " in message
    (run,) = damaged.glob("run-*")
    assert (
        f"of train shard file://{run}/train-00000-of-00001.tfrecord (train/b/bad.png): Invalid PNG data, size "
        in message
    )
    assert message.endswith("or train with --skip-undecodable")


def test_skip_undecodable_skips_and_counts_them(spark, damaged, tmp_path):
    result = run_training(spark, _config(damaged, tmp_path / "m", skip_undecodable=True), num_proc=1)
    written = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert written["skipped_undecodable"] == {"train": 1, "test": 1}
    assert [line.split(" (")[1].split(")")[0] for line in written["skipped_records"]] == [
        "train/b/bad.png",
        "test/a/bad.png",
    ]
    assert written["global_step"] == 8 and written["eval"]["global_step"] == 8
    assert "  skipped undecodable records: train 1, test 1" in result.text().splitlines()
