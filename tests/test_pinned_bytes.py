"""The bytes of every shard of small generated datasets, pinned.

Written before the package layout was redesigned, through the jobs' command lines (which do
not change), so a refactoring provably changes no byte. A rule that changes the bytes on
purpose updates these hashes in the same commit and says why.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import pytest

from conversion.options import DEFAULT_SPLITS
from conversion.splits import assign_split
from jobs import convert_images, convert_table
from tests.conftest import needs_tfrecord_jar
from tests.images import image_bytes, write

IMAGES_PINNED = {
    "test-00000-of-00002.tfrecord": "5ea17abaffd4c9806a51a5882ae39cbccaa09a9912cf4aa07a7f76eb36dd357d",
    "test-00001-of-00002.tfrecord": "a00b9c050575baec9861f279301f3cfcae14a7624fe08440b1cf0846dd87fa01",
    "train-00000-of-00002.tfrecord": "19269936ca69b9451d90750ea31793770d142790ec39f951eb4524015ac1cb7b",
    "train-00001-of-00002.tfrecord": "af51cbf5d391cb754e4ba491cb08cad12ec8730ae0acea71a28f5aa5521ec3be",
    "validation-00000-of-00002.tfrecord": "d879250d0e048a3bacbde3a9d783289aeaff449c99245b06e74ca05bae9a56ab",
    "validation-00001-of-00002.tfrecord": "231ed4fbb41a026d13706e3216fc143642279abcfca6c3e1e4cf568bfc292da5",
}
RESIZED_PINNED = {
    "test-00000-of-00002.tfrecord.gz": "20cd02cd6bda232a7b4a816e4f75742ac210c3f11b3d95571be6c3917b96114c",
    "test-00001-of-00002.tfrecord.gz": "922cada5f9381e95ec89d2dbecbed8b4c2c878ecab4c87e95307bc706e33a381",
    "train-00000-of-00002.tfrecord.gz": "0623d85ded0ed5076e374ee2d522765818f857e2aaf7c0a410d682361ed4ea21",
    "train-00001-of-00002.tfrecord.gz": "95002d9a07f1d541963325012d718484dc71053507c5977aa90099ec00afb151",
    "validation-00000-of-00002.tfrecord.gz": "91818c78178f87ced8b1e376a850f919361960e4b6f5810f67d292e5a1c84b35",
    "validation-00001-of-00002.tfrecord.gz": "05c2e9144b60e062631683646084219cc90f3f3b4107e4f1b118c1c0a0f55c31",
}
# Tables moved to the one split rule (SHA-256 of the key, as images) in the layout redesign:
# only the rows' splits changed (with the old rule the bytes were identical). These are the bytes of
# `--null-policy fill` since missing values stay missing (before it, of the default).
TABLE_PINNED = {
    "test-00000-of-00002.tfrecord": "6d9fd82b9b701cb9dd21d2d61147a2fed2e275764ee5b3225778cebf310ca548",
    "test-00001-of-00002.tfrecord": "d4d754836fffa0aa99cabcc8b305f1be9eea58295adc7fe561e0d68fab9852a5",
    "train-00000-of-00002.tfrecord": "c30a2390c86b15ffc19e5088e0f0111febb9d607bfc60d2863c2e0d48b2dd0c0",
    "train-00001-of-00002.tfrecord": "217ac89bb6a1253dd5dbf1620c28ff9f62f49c779db766744e5219b83f3a1b3a",
    "validation-00000-of-00002.tfrecord": "e0291d72b34e9f4e8966dc8baf5f25c188f153b4eafd30eeed83d721491e586d",
    "validation-00001-of-00002.tfrecord": "741fff20401445eb00685d6f67c861995613439c55ee70b9a26c43982facc0e0",
}

# Missing values stay missing (the default, `--null-policy keep`): a null is left out of its record
# instead of written as 0 or "". The shards holding a row with a null changed on purpose; the two
# whose rows have no null are byte for byte the ones above.
TABLE_NULLS_LEFT_OUT = dict(
    TABLE_PINNED,
    **{
        "test-00000-of-00002.tfrecord": "8ca79daa81d841ab5ca0cfe73e349aeb84dd8b11e6c1a12a287c5b55de75d091",
        "train-00000-of-00002.tfrecord": "3e68a9978205d3e3fb1568bf8e5ac5c65c66450d1f68a5f07fb72389504e2b33",
        "train-00001-of-00002.tfrecord": "89687df25411ac7335ebc683c05c06843266795fdb601a52587e403a8089135f",
        "validation-00001-of-00002.tfrecord": "99da7a5a32b2329de3d06df313eb52edad7aa3ee08c27a29e1694878b19127bb",
    },
)


def image_tree(root: Path) -> Path:
    """3 labels x 8 images of mixed formats and modes, deterministic bytes."""
    formats = [("PNG", "RGB"), ("JPEG", "RGB"), ("PNG", "L"), ("PNG", "RGBA")]
    for label_index, label in enumerate(("ant", "bee", "cow")):
        for i in range(8):
            fmt, mode = formats[i % len(formats)]
            ext = "jpg" if fmt == "JPEG" else "png"
            seed = label_index * 100 + i
            write(root, f"{label}/{i:02d}.{ext}", image_bytes(fmt, (16 + i, 12 + label_index), mode, seed=seed))
    return root


def table_csv(path: Path) -> Path:
    """60 rows: an id, an int, a float, a string category and a label; a few nulls."""
    lines = ["id,count,ratio,colour,label"]
    for i in range(60):
        count = "" if i % 17 == 0 else str(i * 7 % 23)
        colour = ("red", "green", "blue", "")[i % 4]
        lines.append(f"{i},{count},{(i * 0.37) % 5:.3f},{colour},{'yes' if i % 3 else 'no'}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def shard_hashes(folder: Path) -> dict[str, str]:
    """Shard name → sha256, for the shards the manifest lists (all in the one run folder; versions named them
    `<run folder>/<shard name>`, the shard names and bytes did not change)."""
    manifest = json.loads((folder / "manifest.json").read_text())
    paths = sorted(f["path"] for split in manifest["splits"].values() for f in split["files"])
    (run,) = {path.split("/")[0] for path in paths}
    shards = sorted(p.name for p in (folder / run).glob("*.tfrecord*") if p.suffix != ".idx")  # not the indexes
    assert run.startswith("run-") and shards == sorted(path.split("/", 1)[1] for path in paths)
    return {path.split("/", 1)[1]: hashlib.sha256((folder / path).read_bytes()).hexdigest() for path in paths}


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    return image_tree(tmp_path_factory.mktemp("pinned") / "images")


def test_image_shards_are_pinned(spark, images, tmp_path):
    out = tmp_path / "images"
    assert convert_images.main(["--input", str(images), "--output", str(out), "--num-shards", "2"]) == 0
    assert shard_hashes(out) == IMAGES_PINNED


def test_resized_gzip_image_shards_are_pinned(spark, images, tmp_path):
    out = tmp_path / "resized"
    argv = [
        "--input",
        str(images),
        "--output",
        str(out),
        "--num-shards",
        "2",
        "--resize",
        "8x10",
        "--compression",
        "gzip",
    ]
    assert convert_images.main(argv) == 0
    assert shard_hashes(out) == RESIZED_PINNED


@needs_tfrecord_jar  # table datasets are written by spark-tfrecord
def test_table_shards_are_pinned(spark, tmp_path):
    csv = table_csv(tmp_path / "rows.csv")
    argv = ["--input", str(csv), "--label", "label", "--key", "id", "--num-shards", "2"]
    assert convert_table.main([*argv, "--output", str(tmp_path / "filled"), "--null-policy", "fill"]) == 0
    assert shard_hashes(tmp_path / "filled") == TABLE_PINNED
    out = tmp_path / "table"
    assert convert_table.main([*argv, "--output", str(out)]) == 0
    assert shard_hashes(out) == TABLE_NULLS_LEFT_OUT
    manifest = json.loads((out / "manifest.json").read_text())
    expected = Counter(assign_split(str(i), DEFAULT_SPLITS) for i in range(60))  # the one split rule, in Python
    assert {split: info["num_records"] for split, info in manifest["splits"].items()} == expected
    assert {name: f["null_count"] for name, f in manifest["features"].items()} == {
        "id": 0,
        "count": 4,  # rows 0, 17, 34, 51
        "ratio": 0,
        "colour": 15,  # every 4th row: "" is the CSV's null
        "label": 0,
    }
