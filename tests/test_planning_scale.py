"""Scale without files: 10,000,000 synthetic paths planned on the driver within a stated memory bound and time,
with a task payload that does not grow with the file count (figures: README, "Planning at scale")."""

from __future__ import annotations

import pytest

from benchmarks.planning_scale import PAYLOAD_TARGET_BYTES, PEAK_RSS_TARGET_MB, measure

MAX_PLANNING_S = 120  # discover + plan + group of 10,000,000 paths: 13-18 s measured on the shared 2-core machine
MAX_BYTES_PER_PATH = 160  # peak RSS growth per path from 1,000,000 to 10,000,000 paths: about 98 measured


@pytest.mark.slow
def test_ten_million_paths_plan_within_the_memory_bound_and_send_tasks_a_constant_payload(tmp_path):
    small = measure("columns", 1_000_000, workdir=tmp_path)
    big = measure("columns", 10_000_000, workdir=tmp_path)
    assert big["peak_rss_mb"] <= PEAK_RSS_TARGET_MB, big
    assert big["planning_s"] <= MAX_PLANNING_S, big
    assert big["payload_bytes"] <= PAYLOAD_TARGET_BYTES and small["payload_bytes"] <= PAYLOAD_TARGET_BYTES
    growth = (big["peak_rss_mb"] - small["peak_rss_mb"]) * 2**20 / (big["files"] - small["files"])
    assert growth <= MAX_BYTES_PER_PATH, (growth, small, big)
    assert big["shards"] > 8000 and big["largest_shard_files"] < 2000  # default 128 MB shards of 20-200 kB files
