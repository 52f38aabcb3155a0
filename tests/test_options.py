"""Both conversions' options share one base: the same bad values get the same refusals."""

from __future__ import annotations

import pytest

from conversion.images.options import ImageConvertOptions
from conversion.tables.options import TableConvertOptions
from dataset.errors import OptionError

BAD = [
    ({"num_shards": 0}, "--num-shards must be at least 1, got 0"),
    ({"target_shard_mb": 0}, "--target-shard-mb must be positive, got 0"),
    ({"target_shard_mb": -1.5}, "--target-shard-mb must be positive, got -1.5"),
    ({"compression": "zstd"}, "--compression must be one of none, gzip (codecs tf.data reads), got 'zstd'"),
    ({"mode": "merge"}, "--mode must be one of error, overwrite, append, got 'merge'"),
    ({"max_reject_fraction": 1.5}, r"--max-reject-fraction must be in [0, 1], got 1.5"),
    ({"splits": (("train", 0.5), ("test", 0.4))}, "--splits fractions add up to 0.9, not 1"),
    ({"splits": (("train", 0.5), ("train", 0.5))}, "--splits repeats a name: train, train"),
    ({"splits": (("bad name", 1.0),)}, "split name 'bad name' may only hold letters, digits and underscores"),
    ({"splits": ()}, "--splits needs at least one split"),
]


def refusal(make, values: dict) -> str:
    with pytest.raises(OptionError) as caught:
        make(**values)
    return str(caught.value)


@pytest.mark.parametrize("values, message", BAD)
def test_both_kinds_refuse_the_same_bad_values_with_the_same_message(values, message):
    images = refusal(lambda **v: ImageConvertOptions("in", "out", **v), values)
    tables = refusal(lambda **v: TableConvertOptions(output="out", label="y", input="in", **v), values)
    assert images == tables
    assert images.startswith(message)
