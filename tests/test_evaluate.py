"""Evaluation on every rank: each rank's part of the split (the Horovod runs are in test_training.py)."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest

from dataset.versions import read_manifest
from training.evaluate import rank_eval_input_fn
from training.images.model import IMAGE_PARAMS as DEFAULT_PARAMS
from training.input import KEY_FEATURE, eval_input_fn
from training.kinds import split_input_spec


def keys(input_fn) -> list[str]:
    return [k.decode() for features, _ in input_fn() for k in features[KEY_FEATURE].numpy()]


@pytest.mark.parametrize("num_ranks, by_files", [(1, True), (2, True), (3, False), (5, False)])
def test_every_record_once_across_the_ranks(shapes_dataset, num_ranks, by_files):
    manifest = read_manifest(str(shapes_dataset))
    spec = split_input_spec(str(shapes_dataset), manifest, "test", DEFAULT_PARAMS, threads=2)
    assert len(spec.files) == 2  # the fixture's shards: 2 ranks split by files, 3 and 5 by records
    everything = keys(eval_input_fn(spec, 16))
    parts = [keys(rank_eval_input_fn(spec, 16, rank, num_ranks)) for rank in range(num_ranks)]
    assert Counter(k for part in parts for k in part) == Counter(everything)
    assert len(everything) == manifest.splits["test"].num_records
    assert all(parts)  # no rank idles
    if by_files and num_ranks == 2:
        assert parts[0] == keys(eval_input_fn(dataclasses.replace(spec, files=spec.files[:1]), 16))
