"""Training options that cannot work stop before Horovod starts; one shard trains on 1 and 2 ranks."""

from __future__ import annotations

import time

import pytest

from conversion.images.convert import convert_images
from conversion.images.options import ImageConvertOptions
from dataset.errors import DatasetError, TrainingError
from tests.images import image_bytes, write
from training.config import TrainConfig
from training.run import run_training

pytestmark = pytest.mark.slow


def _convert(spark, root, out, files: dict[str, bytes]) -> str:
    for relpath, data in files.items():
        write(root, relpath, data)
    options = ImageConvertOptions(str(root), str(out), split_from_folders=True, num_shards=1, max_reject_fraction=0.5)
    convert_images(spark, options)
    return str(out)


@pytest.fixture(scope="module")
def tiny(tiny_images):
    """train and test: 2 labels, one shard each; `empty`: a split whose only file was rejected (tests/conftest.py)."""
    return tiny_images


def _config(data, model_dir, **changes) -> TrainConfig:
    values = dict(data=str(data), model_dir=str(model_dir), batch_size=4, max_steps=3, eval_split="test", export=False)
    return TrainConfig(**dict(values, **changes))


def _fails_fast(spark, config, num_proc, error, message) -> None:
    start = time.monotonic()
    with pytest.raises(error, match=message):
        run_training(spark, config, num_proc)
    assert time.monotonic() - start < 20  # before Horovod starts (its start timeout is 120 s)


def test_num_proc_below_one_or_above_the_task_slots_fails_before_horovod(spark, tiny, tmp_path):
    config = _config(tiny, tmp_path / "m")
    _fails_fast(
        spark,
        config,
        0,
        TrainingError,
        r"^--num-proc must be at least 1, got 0 \(leave it out to use all 2 task slots\)$",
    )
    _fails_fast(spark, config, -2, TrainingError, "^--num-proc must be at least 1, got -2 ")
    _fails_fast(
        spark,
        config,
        3,
        TrainingError,
        r"^--num-proc 3 is more than the 2 task slots Spark can give \(spark.sparkContext",
    )
    assert not (tmp_path / "m").exists()


def test_an_empty_eval_split_fails_before_horovod(spark, tiny, tmp_path):
    message = r"^--eval-split 'empty' has no records; splits with records: test, train$"
    _fails_fast(spark, _config(tiny, tmp_path / "m", eval_split="empty"), 1, DatasetError, message)


def test_a_single_label_fails_before_horovod(spark, tiny, tmp_path):
    one = _convert(
        spark,
        tmp_path / "in",
        tmp_path / "one",
        {f"{split}/only/{i}.png": image_bytes("PNG", (8, 8), seed=i) for split in ("train", "test") for i in range(8)},
    )
    message = "has 1 label \\(only\\) to train on; a classifier needs at least 2: add a label folder"
    _fails_fast(spark, _config(one, tmp_path / "m"), 1, TrainingError, message)
    _fails_fast(
        spark, _config(tiny, tmp_path / "m", keep_labels=("a",)), 1, TrainingError, "has 1 label \\(a\\) to train"
    )


@pytest.mark.parametrize("num_proc", [1, 2])
def test_a_single_shard_split_trains_on_one_and_two_ranks(spark, tiny, tmp_path, num_proc, request):
    if num_proc == 1:  # the session's one-rank run of this configuration (exported too: test_predict_errors uses it)
        result = request.getfixturevalue("tiny_model")
    else:
        result = run_training(spark, _config(tiny, tmp_path / "m"), num_proc)
    assert [r["rank"] for r in result.per_rank] == list(range(num_proc))
    assert all(r["global_step"] == 3 for r in result.per_rank)
    assert result.metrics["eval"]["global_step"] == 3
