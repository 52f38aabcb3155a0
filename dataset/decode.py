"""The one image decoder of the project: training, validation and the record scans all use it.

`scan_undecodable` finds the records of a split whose image this decoder cannot read, naming
each by split, shard, position and `image/filename`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from dataset.features import IMAGE_ENCODED, IMAGE_FILENAME
from dataset.layout import DatasetFolder, tf_compression
from dataset.manifest import Manifest


def decode_image(encoded: Any, channels: int) -> Any:
    """Encoded JPEG/PNG/GIF/BMP bytes (a scalar string tensor) → uint8 [H, W, channels]."""
    import tensorflow as tf

    image = tf.io.decode_image(encoded, channels=channels, expand_animations=False)
    image.set_shape([None, None, channels])
    return image


@dataclass(frozen=True)
class BadRecord:
    """A record whose image does not decode."""

    split: str
    shard: str  # the shard's URL
    index: int  # position in the shard, from 0
    filename: str  # its image/filename
    error: str  # the decoder's message (first line)

    def text(self) -> str:
        return f"record {self.index} of {self.split} shard {self.shard} ({self.filename}): {self.error}"


def op_error_text(err: Exception) -> str:
    """The cause in a TensorFlow error: its first line, or in a graph execution error the line
    before the node's name, without the graph-node prefix and op suffix."""
    lines = [line for line in (getattr(err, "message", None) or str(err)).splitlines() if line.strip()]
    text = lines[0] if lines else type(err).__name__
    if text.startswith("Graph execution error"):
        node = next((i for i, line in enumerate(lines) if line.lstrip().startswith("[[{{node")), len(lines))
        text = lines[node - 1] if node > 1 else text
    text = re.sub(r"^\{\{[^}]*\}\}\s*", "", text.strip())
    return re.sub(r"\s*\[Op:\w+\].*$", "", text)


def decoder_error(encoded: bytes) -> str | None:
    """Why the decoder cannot read `encoded` (the cause of its error), or None: it decodes."""
    import tensorflow as tf

    try:
        decode_image(tf.constant(encoded), 3)
    except tf.errors.OpError as err:
        return op_error_text(err)
    return None


def scan_undecodable(
    data_url: str, manifest: Manifest, split: str, first_only: bool = False, sample: int | None = None
) -> list[BadRecord]:
    """The records of `split` whose `image/encoded` the decoder cannot read, in shard order.

    Decodes every record (in parallel), or about `sample` records spread over the shards (the
    first of each); `first_only` stops at the first shard holding one.
    """
    import tensorflow as tf

    folder = DatasetFolder(data_url)
    spec = {name: tf.io.FixedLenFeature([], tf.string) for name in (IMAGE_ENCODED, IMAGE_FILENAME)}
    compression = tf_compression(manifest.compression)

    def decoded_index(index: tf.Tensor, serialized: tf.Tensor) -> tf.Tensor:
        image = decode_image(tf.io.parse_single_example(serialized, spec)[IMAGE_ENCODED], 3)
        return index + tf.cast(tf.size(image) * 0, tf.int64)  # depends on the decode, so it is not pruned

    bad: list[BadRecord] = []
    files = manifest.split(split).files
    per_shard = None if sample is None else -(-sample // max(1, len(files)))
    for shard in files:
        url = folder.file_url(shard.path)
        records = tf.data.TFRecordDataset(url, compression_type=compression).enumerate()
        count = shard.num_records
        if per_shard is not None:
            records, count = records.take(per_shard), min(count, per_shard)
        good = records.map(decoded_index, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
        decoded = {int(i) for i in good.ignore_errors()}
        missing = sorted(set(range(count)) - decoded)
        if not missing:
            continue
        wanted = set(missing)
        for index, serialized in records:
            if int(index) in wanted:
                parsed = tf.io.parse_single_example(serialized, spec)
                name = parsed[IMAGE_FILENAME].numpy().decode("utf-8", "replace")
                error = decoder_error(parsed[IMAGE_ENCODED].numpy()) or "decodes alone but not in the pipeline"
                bad.append(BadRecord(split, url, int(index), name, error))
        if first_only:
            break
    return bad
