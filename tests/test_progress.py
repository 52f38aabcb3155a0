"""Progress lines of the conversion and prediction jobs (dataset/progress.py): their format, the interval
variable, and --quiet."""

from __future__ import annotations

import re

import pytest

from dataset.errors import OptionError
from dataset.progress import files_line, interval_seconds, ticking
from jobs import convert_images as convert_job
from jobs import convert_table as convert_table_job
from tests.conftest import needs_tfrecord_jar
from tests.test_convert_images import make_tree

TABLE_LINE = re.compile(
    r"^progress: (reading|counting rows and statistics|writing shards): \d+/\d+ tasks \(\d+%\), (\d+:\d\d:\d\d|\?) left$"
)
LINE = re.compile(r"^progress: \d+/\d+ files \(\d+%\), \d+\.\d MB/s, \d+ rejected, (\d+:\d\d:\d\d|\?) left$")


def test_the_line_says_files_done_of_total_rate_rejects_and_time_left():
    assert (
        files_line(100, 400, 5_000_000, 3, 2.0) == "progress: 100/400 files (25%), 2.5 MB/s, 3 rejected, 0:00:06 left"
    )
    assert files_line(0, 400, 0, 0, 2.0) == "progress: 0/400 files (0%), 0.0 MB/s, 0 rejected, ? left"
    assert LINE.match(files_line(400, 400, 1, 0, 1.0))


def test_interval_from_the_variable_quiet_and_a_bad_value():
    assert interval_seconds(env={}) == 10.0
    assert interval_seconds(env={"PROGRESS_SECONDS": "0.5"}) == 0.5
    assert interval_seconds(quiet=True, env={"PROGRESS_SECONDS": "0.5"}) is None
    with pytest.raises(OptionError, match=r"^PROGRESS_SECONDS must be a positive number of seconds, got '0'$"):
        interval_seconds(env={"PROGRESS_SECONDS": "0"})


def test_ticking_reports_while_the_block_runs_and_stops_after():
    import time

    lines: list[str] = []
    with ticking(0.01, lambda elapsed: f"at {elapsed:.2f}", lines.append):
        time.sleep(0.2)
    seen = len(lines)
    time.sleep(0.05)
    assert seen >= 3 and len(lines) == seen and all(line.startswith("at ") for line in lines)
    with ticking(None, lambda elapsed: "never", lines.append):
        time.sleep(0.05)
    assert len(lines) == seen


def test_a_conversion_prints_progress_lines_unless_quiet(spark, tmp_path, monkeypatch, capsys):
    make_tree(tmp_path / "in", extra_per_label=40)
    monkeypatch.setenv("PROGRESS_SECONDS", "0.05")
    argv = ["--input", str(tmp_path / "in"), "--max-reject-fraction", "0.5", "--num-shards", "4"]
    assert convert_job.main([*argv, "--output", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("progress:")]
    assert lines and all(LINE.match(line) for line in lines), err
    assert convert_job.main([*argv, "--output", str(tmp_path / "b"), "--quiet"]) == 0
    assert "progress:" not in capsys.readouterr().err
    monkeypatch.setenv("PROGRESS_SECONDS", "soon")
    assert convert_job.main([*argv, "--output", str(tmp_path / "c")]) == 2
    assert capsys.readouterr().err.strip() == "error: PROGRESS_SECONDS must be a positive number of seconds, got 'soon'"


@needs_tfrecord_jar
def test_a_table_conversion_prints_progress_lines_by_phase_unless_quiet(spark, tmp_path, monkeypatch, capsys):
    rows = "\n".join(f"{i},{i % 7},{'ab'[i % 2]}" for i in range(3000))
    (tmp_path / "t.csv").write_text("id,x,label\n" + rows + "\n")
    monkeypatch.setenv("PROGRESS_SECONDS", "0.02")
    argv = ["--input", str(tmp_path / "t.csv"), "--label", "label", "--key", "id", "--num-shards", "12"]
    assert convert_table_job.main([*argv, "--output", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("progress:")]
    assert lines and all(TABLE_LINE.match(line) for line in lines), err
    assert any(line.startswith("progress: writing shards: ") for line in lines), err  # 36 shard tasks take a while
    assert spark.sparkContext.getLocalProperty("spark.jobGroup.id") is None  # the job group is the caller's again
    assert convert_table_job.main([*argv, "--output", str(tmp_path / "b"), "--quiet"]) == 0
    assert "progress:" not in capsys.readouterr().err
