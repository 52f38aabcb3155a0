"""Storage a user got wrong ends in one line and a non-zero exit, never a traceback, and leaves nothing."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from conversion.images.convert import convert_images
from conversion.images.options import ImageConvertOptions
from dataset.versions import read_manifest
from jobs import convert_images as convert_job
from tests.images import image_bytes, write


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    for label in ("a", "b"):
        for i in range(30):
            write(root, f"{label}/{i}.png", image_bytes("PNG", (100, 100), seed=i + 100 * (label == "b")))
    return root  # about 1.8 MB


@pytest.fixture
def mount(tmp_path):
    """A tmpfs of 1 MB at a fresh folder (mounted with `options`), unmounted at the end."""
    mounted = []

    def make(options: str):
        point = tmp_path / f"mnt{len(mounted)}"
        point.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"{options},size=1m", "tmpfs", str(point)], capture_output=True
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
        mounted.append(point)
        return point

    yield make
    for point in mounted:
        _unmount(point)


def _unmount(point, tries: int = 50) -> None:
    """Unmount `point`, waiting for a task of the failed job that Spark is still killing to let go of its files."""
    for _ in range(tries):
        if subprocess.run(["umount", str(point)], capture_output=True).returncode == 0:
            return
        time.sleep(0.2)
    subprocess.run(["umount", "--lazy", str(point)], check=True)


def _job(images, out, capsys) -> tuple[int, str]:
    code = convert_job.main(["--input", str(images), "--output", str(out)])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:") or "Traceback" in line]
    return code, "\n".join(lines)


def test_a_full_disk_names_the_path_and_leaves_nothing(spark, images, mount, capsys):
    full = mount("rw")
    code, err = _job(images, full / "data", capsys)
    assert code == 2
    assert err.startswith(f"error: cannot write {full}/data/run-") and ": no space left on the device; " in err
    assert err.endswith("free space or choose another --output, nothing was published") and "\n" not in err
    assert os.listdir(full) == []


def test_a_read_only_mount_and_a_missing_folder_are_one_line(spark, images, mount, tmp_path, capsys):
    read_only = mount("ro")
    code, err = _job(images, read_only / "data", capsys)
    assert (code, err) == (
        2,
        f"error: cannot write {read_only}/data: the file system is read-only; free space or choose another --output, "
        "nothing was published",
    )
    code, err = _job(images, tmp_path / "not-mounted" / "data", capsys)
    assert (code, err) == (
        2,
        f"error: the folder that would hold --output {tmp_path}/not-mounted/data, {tmp_path}/not-mounted, does not exist; "
        "create it first (or check that its disk is mounted)",
    )
    assert not (tmp_path / "not-mounted").exists()


def test_a_run_beside_another_runs_uncommitted_folder_leaves_it_untouched(spark, images, tmp_path):
    # Runs write into folders of their own; what decides between two runs is the version commit (tests/
    # test_versions.py), so another run's files, live or dead, are neither refused nor removed (vacuum does that).
    other = tmp_path / "data" / "run-20260101T000000Z-01234567"
    write(other, "train-00000-of-00001.tfrecord", b"half")
    summary = convert_images(spark, ImageConvertOptions(str(images), str(tmp_path / "data")))
    assert sum(summary.records.values()) == 60
    assert (other / "train-00000-of-00001.tfrecord").read_bytes() == b"half"
    manifest = read_manifest(str(tmp_path / "data"))
    assert not [f.path for split in manifest.splits.values() for f in split.files if f.path.startswith(other.name)]
