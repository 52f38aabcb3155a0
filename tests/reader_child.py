"""The PyTorch-side and DALI readers, run in a child process of the tests: the `tfrecord` package cannot be imported
where TensorFlow is (duplicate protobuf symbols), so tests/test_readers.py runs this without TensorFlow and reads
the pickled result.

    python -m tests.reader_child tfrecord DATA SPLIT WORKERS OUT   # per worker: records and parsed examples
    python -m tests.reader_child dali DATA SPLIT SHARDS OUT        # per DALI shard: (image bytes, label) pairs
"""

from __future__ import annotations

import pickle
import sys


def tfrecord_side(data: str, split: str, workers: int) -> dict:
    from dataset.torch_reader import worker_examples, worker_records

    return {
        "records": [list(worker_records(data, split, w, workers)) for w in range(workers)],
        "examples": [list(worker_examples(data, split, w, workers)) for w in range(workers)],
    }


def dali_side(data: str, split: str, shards: int) -> dict:
    """A CPU-only DALI pipeline (`device_id=None`) over the split's shards and their indexes, one per DALI shard."""
    from nvidia.dali import fn, pipeline_def
    from nvidia.dali import tfrecord as tfrec

    from dataset.layout import DatasetFolder
    from dataset.versions import read_manifest

    folder = DatasetFolder(data)
    files = [f for f in read_manifest(data).split(split).files if f.num_records]  # DALI refuses an empty index
    paths, indexes = [folder.path(f.path) for f in files], [folder.path(f.index) for f in files]

    @pipeline_def(batch_size=1, num_threads=1, device_id=None)
    def pipeline(shard_id: int):
        features = {
            "image/encoded": tfrec.FixedLenFeature((), tfrec.string, ""),
            "image/class/label": tfrec.FixedLenFeature([1], tfrec.int64, -1),
        }
        read = fn.readers.tfrecord(
            path=paths, index_path=indexes, features=features, shard_id=shard_id, num_shards=shards,
            random_shuffle=False, name="Reader",
        )  # fmt: skip
        return read["image/encoded"], read["image/class/label"]

    out = []
    for shard_id in range(shards):
        pipe = pipeline(shard_id=shard_id)
        pipe.build()
        size = pipe.epoch_size("Reader")
        got = []
        for _ in range(size * (shard_id + 1) // shards - size * shard_id // shards):  # this shard's records
            encoded, label = pipe.run()
            got.append((bytes(encoded.at(0)), int(label.at(0)[0])))
        out.append(got)
    return {"epoch_size": size, "shards": out}


def main(argv: list[str]) -> int:
    side, data, split, count, out = argv
    result = (tfrecord_side if side == "tfrecord" else dali_side)(data, split, int(count))
    result["tensorflow_imported"] = "tensorflow" in sys.modules
    with open(out, "wb") as f:
        pickle.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
