"""`convert_table --mode append` on real Spark: new input files become new shards of version N+1, existing shards
stay byte for byte, the union per split equals a full conversion's records, and the merged statistics equal a
full conversion's (exact counts and vocabularies, moments to 1e-9, carried quantile boundaries within the bound
the summary states)."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conversion.compact import CompactOptions, compact
from conversion.tables.appending import fit_columns
from conversion.tables.convert import convert_table
from conversion.tables.merge import boundary_rank_bound, labels_after, moments
from conversion.tables.options import TableConvertOptions
from conversion.tables.sidecar import Sidecar, merged
from dataset.errors import ConversionError
from dataset.vacuum import plan_vacuum, vacuum
from dataset.versions import read_version
from jobs import convert_table as convert_table_job
from tests.conftest import needs_tfrecord_jar
from tests.example_reader import file_records, parse_example

SPLITS = (("train", 0.6), ("validation", 0.2), ("test", 0.2))


def frame(seed: int, rows: int, start: int, labels: tuple[str, ...]) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(5, 2, rows)
    x[::7] = np.nan
    x[3::11] = np.inf
    data = pd.DataFrame(
        {
            "id": np.arange(start, start + rows, dtype=np.int64),
            "x": x,
            "n": rng.integers(-50, 50, rows),
            "color": rng.choice(["red", "green", "blue", "teal", "plum"], rows),
            "label": rng.choice(list(labels), rows),
        }
    )
    data.loc[data.index[::9], "color"] = None
    return data


def shard_bytes(out: Path, version: int | None = None) -> dict[str, dict[str, str]]:
    """split → {shard path: sha256} of a version."""
    manifest = read_version(str(out), version).manifest
    return {
        split: {f.path: hashlib.sha256((out / f.path).read_bytes()).hexdigest() for f in info.files}
        for split, info in manifest.splits.items()
    }


def records(out: Path) -> dict[str, list[bytes]]:
    """split → its serialized records, sorted (shard layout aside)."""
    manifest = read_version(str(out)).manifest
    return {s: sorted(r for f in info.files for r in file_records(out / f.path)) for s, info in manifest.splits.items()}


def options(source: Path, out: Path, mode: str = "append", **more) -> TableConvertOptions:
    fmt = "csv" if any(source.glob("*.csv")) else "parquet"
    values = dict(output=str(out), label="label", input=str(source), format=fmt, key="id", splits=SPLITS)
    values.update(num_shards=1, task="classification")  # no --task auto guess: one Spark job fewer per run
    return TableConvertOptions(**{**values, "mode": mode, **more})


def assert_merged_like_full(appended: Path, full: Path) -> None:
    """The appended version's statistics against a full conversion of the same files."""
    merged, whole = read_version(str(appended)).manifest, read_version(str(full)).manifest
    assert merged.labels == whole.labels
    assert {s: (i.num_records, i.label_counts) for s, i in merged.splits.items()} == {
        s: (i.num_records, i.label_counts) for s, i in whole.splits.items()
    }
    assert (merged.num_files_seen, merged.num_rejected) == (whole.num_files_seen, whole.num_rejected)
    assert merged.features == whole.features  # null counts and defaults too
    for name, column in whole.table.columns.items():
        ours, theirs = merged.table.columns[name].stats, column.stats
        assert merged.table.columns[name].source_type == column.source_type
        exact = ("null_count", "count", "min", "max", "nan_count", "inf_count", "num_distinct", "vocabulary")
        assert {k: getattr(ours, k) for k in exact} == {k: getattr(theirs, k) for k in exact}, name
        for moment in ("mean", "stddev"):
            if getattr(theirs, moment) is None:
                assert getattr(ours, moment) is None
            else:
                assert math.isclose(getattr(ours, moment), getattr(theirs, moment), rel_tol=1e-9), (name, moment)


def assert_boundaries_within_bound(appended: Path, parent: int, values: dict[str, np.ndarray]) -> None:
    """Carried boundaries: the parent's, at rank p ± (appended share + the parent's own 1/1000 + one value)
    among all the statistics split's finite values."""
    merged = read_version(str(appended)).manifest.table.columns
    before = read_version(str(appended), parent).manifest.table.columns
    for name, finite in values.items():
        boundaries = merged[name].stats.boundaries
        assert boundaries == before[name].stats.boundaries and len(boundaries) == 9
        share = (merged[name].stats.count - before[name].stats.count) / merged[name].stats.count
        ordered = np.sort(finite)
        for i, b in enumerate(boundaries, start=1):
            low, high = np.searchsorted(ordered, b, "left") / len(ordered), np.searchsorted(ordered, b, "right")
            high = high / len(ordered)
            slack = share + 1 / 1000 + 1 / before[name].stats.count
            assert low - slack <= i / 10 <= high + slack, (name, b, i)


def train_values(out: Path, data: pd.DataFrame, column: str) -> np.ndarray:
    """The finite values of `column` in the statistics split, by the rows the dataset put there."""
    manifest = read_version(str(out)).manifest
    ids = {parse_example(r)["id"][0] for f in manifest.splits["train"].files for r in file_records(out / f.path)}
    values = data.loc[data["id"].isin(ids), column].to_numpy(float)
    return values[np.isfinite(values)]


def sample_std(values: np.ndarray) -> float | None:
    return float(np.std(values, ddof=1)) if len(values) > 1 else None


def test_moments_merge_by_chan_equals_the_whole():
    rng = np.random.default_rng(0)
    values = rng.normal(1e6, 3.0, 1001)  # a large mean: the naive sum-of-squares formula loses digits here
    for cut in (1, 2, 500, 1000):
        a, b = values[:cut], values[cut:]
        count, mean, stddev = moments(len(a), float(a.mean()), sample_std(a), len(b), float(b.mean()), sample_std(b))
        assert count == 1001 and math.isclose(mean, values.mean(), rel_tol=1e-12)
        assert math.isclose(stddev, np.std(values, ddof=1), rel_tol=1e-9)
    assert moments(0, None, None, 1, 2.0, None) == (1, 2.0, None)
    assert moments(1, 1.0, None, 1, 3.0, None) == (2, 2.0, math.sqrt(2.0))


def test_labels_keep_their_ids_and_vocabularies_merge_with_a_stated_bound():
    assert labels_after(("b", "d"), ("a", "d", "c")) == ("b", "d", "a", "c")  # new labels after the old, sorted
    assert boundary_rank_bound(800, 1000) == 0.2
    old = Sidecar({"s": {"x": 5, "y": 3, "z": 1}}, {"s": 3}, {"s": True}, {"n": 800}, {"a.csv": 9})
    new = Sidecar({"s": {"y": 4, "w": 2}}, {"s": 2}, {"s": True}, {"n": 100}, {"b.csv": 6})
    both = merged(old, new)
    assert both.counts == {"s": {"x": 5, "y": 7, "z": 1, "w": 2}} and both.num_distinct == {"s": 4}
    assert both.complete == {"s": True} and both.boundaries_count == {"n": 800}
    assert both.file_rows == {"a.csv": 9, "b.csv": 6}
    assert Sidecar.from_bytes(both.to_bytes()) == both
    capped = merged(old, new, cap=2)  # over the cap: the 2 most frequent kept, marked not exact
    assert capped.counts == {"s": {"y": 7, "x": 5}} and capped.complete == {"s": False}
    assert capped.num_distinct == {"s": 4}  # exact while both parts were complete
    again = merged(capped, Sidecar({"s": {"z": 9}}, {"s": 1}, {"s": True}), cap=2)
    # z had 1 more beyond the cap (the kept list's smallest count, 5, bounds what was left out): 9 of 10 counted
    assert again.counts == {"s": {"z": 9, "y": 7}} and again.complete == {"s": False}
    assert again.num_distinct == {"s": 4}  # a lower bound once a part is over the cap


@needs_tfrecord_jar
def test_parquet_append_adds_shards_and_merges_statistics(spark, tmp_path, capsys):
    source = tmp_path / "in"
    source.mkdir()
    parts = [frame(1, 70, 0, ("a", "b")), frame(2, 60, 1000, ("a", "b")), frame(3, 50, 2000, ("a", "b", "c"))]
    for i, part in enumerate(parts[:2]):
        part.to_parquet(source / f"part-{i}.parquet")
    out = tmp_path / "out"
    first = convert_table(spark, options(source, out))  # no dataset yet: a full conversion, version 1
    assert first.version == 1
    v1 = shard_bytes(out)

    parts[2].to_parquet(source / "part-2.parquet")
    (source / "_SUCCESS").write_bytes(b"")  # not a data file: Spark's listing leaves it out, so does the index
    summary = convert_table(spark, options(source, out))
    assert summary.version == 2 and summary.text().startswith("Appended 50 of 50 rows from 1 new files")
    assert "quantile boundaries carried from version 1" in summary.text()
    v2 = shard_bytes(out)
    for split, shards in v1.items():  # every shard of version 1 is in version 2, same path, same bytes
        assert {p: h for p, h in v2[split].items() if p in shards} == shards
        new = [p for p in v2[split] if p not in shards]
        assert new and {p.split("/")[0] for p in new} == {read_version(str(out)).info.run}
    current = read_version(str(out))
    assert current.info.operation == "append"
    assert current.manifest.table.value_counts == f"{current.info.run}/_stats.parquet"
    assert current.manifest.file_index == f"{current.info.run}/_files.parquet"

    full = tmp_path / "full"
    convert_table(spark, options(source, full, mode="error"))
    assert records(out) == records(full)
    assert_merged_like_full(out, full)
    data = pd.concat(parts)
    assert_boundaries_within_bound(out, 1, {c: train_values(out, data, c) for c in ("x", "n", "id")})

    again = convert_table(spark, options(source, out))
    assert again.version is None and again.text() == (
        f"Nothing new under {source}: 3 files already in version 2 of {out}; nothing committed"
    )
    assert read_version(str(out)).number == 2 and len(list(out.glob("run-*"))) == 2

    extra = frame(4, 5, 3000, ("a",)).assign(extra=1.0)
    extra.to_parquet(source / "part-3.parquet")
    with pytest.raises(ConversionError, match=r"have a new column 'extra' \(version 2\); .*--mode overwrite"):
        convert_table(spark, options(source, out))
    (source / "part-3.parquet").unlink()
    frame(5, 5, 4000, ("a",)).drop(columns="color").to_parquet(source / "part-4.parquet")
    argv = ["--input", str(source), "--format", "parquet", "--output", str(out), "--mode", "append", "--quiet"]
    argv += [
        "--label",
        "label",
        "--key",
        "id",
        "--splits",
        "train=0.6,validation=0.2,test=0.2",
        "--task",
        "classification",
    ]
    capsys.readouterr()  # the appends above printed their TFDS line (split spans run folders)
    assert convert_table_job.main(argv) == 2  # through the job: one line, exit 2
    assert capsys.readouterr().err.strip() == (
        f"error: the new files under {source} lack column 'color' (version 2); convert all files with --mode "
        "overwrite (a new version), or keep the new files apart"
    )
    assert read_version(str(out)).number == 2 and len(list(out.glob("run-*"))) == 2
    manifest = read_version(str(out)).manifest

    # JSON reads as a full conversion would: whole numbers widen to the version's double, a field no record has
    # is null, a field with no value takes the version's type; Parquet carries its types: no widening
    version, types = read_version(str(out)), [(n, c.source_type) for n, c in manifest.table.columns.items()]
    (tmp_path / "a.json").write_text('{"id": 7, "x": null, "n": 3, "label": "a"}\n')
    (tmp_path / "b.json").write_text('{"id": 8, "x": 2, "n": 4, "label": "b", "color": "red"}\n')
    rows = []
    for name in ("a.json", "b.json"):
        fitted = fit_columns(spark.read.json(str(tmp_path / name)), version, "json")
        assert [(f.name, f.dataType.simpleString()) for f in fitted.schema.fields] == types
        rows.append(fitted.collect()[0].asDict())
    assert rows == [
        {"id": 7, "x": None, "n": 3, "color": None, "label": "a"},
        {"id": 8, "x": 2.0, "n": 4, "color": "red", "label": "b"},
    ]
    with pytest.raises(ConversionError, match=r"^column 'x' is bigint in the new files but double in version 2"):
        fit_columns(spark.read.json(str(tmp_path / "b.json")), version, "parquet")

    # a compaction moves every shard out of version 2's run folder; its value counts stay listed, so vacuum keeps them
    compact(str(out), CompactOptions())
    compacted = read_version(str(out))
    assert compacted.info.operation == "compact" and compacted.manifest.table.value_counts == manifest.table.value_counts
    plan = plan_vacuum(str(out), keep=1, min_age_s=0)
    assert manifest.table.value_counts not in {f.path for f in plan.files}
    assert any(f.path.startswith(f"{version.info.run}/") for f in plan.files)  # the old shards there do go
    vacuum(plan)
    assert (out / manifest.table.value_counts).is_file()


@needs_tfrecord_jar
def test_csv_folder_append_reads_and_types_as_the_version(spark, tmp_path):
    source = tmp_path / "csv"
    source.mkdir()
    parts = [frame(6, 40, 0, ("a", "b")), frame(7, 40, 500, ("a", "b")), frame(8, 30, 900, ("a", "b"))]
    parts[0]["v"] = np.arange(40)  # whole numbers alone: int by pandas' rules, widened to the version's double
    parts[1]["v"] = np.arange(40) + 0.5  # version 1 is this file alone: v is double
    parts[2]["v"] = np.arange(30) * 2**33  # bigint, widened too
    out, full = tmp_path / "out", tmp_path / "full"
    semicolon = dict(read_options=(("sep", ";"),))
    parts[1].to_csv(source / "p1.csv", sep=";", index=False)
    convert_table(spark, options(source, out, **semicolon))
    parts[0].to_csv(source / "p0.csv", sep=";", index=False)
    assert convert_table(spark, options(source, out, **semicolon)).version == 2
    parts[2].to_csv(source / "p2.csv", sep=";", index=False)
    (source / "p1.csv").write_text((source / "p1.csv").read_text() + "\n")  # changed: kept as converted
    with pytest.raises(ConversionError, match=r"^--read-option is \[\] but version 2 was converted with \[\['sep'"):
        convert_table(spark, options(source, out))
    with pytest.raises(ConversionError, match=r"^--on-change replace is for images; .*use --mode overwrite"):
        convert_table(spark, options(source, out, on_change="replace", **semicolon))
    with pytest.raises(ConversionError, match=r"^--mode append .*catalog table \(--table\) .* use --mode overwrite"):
        convert_table(spark, TableConvertOptions(output=str(out), label="label", table="t", mode="append"))
    summary = convert_table(spark, options(source, out, **semicolon))  # version 3 on version 2's merged counts
    assert summary.version == 3 and "kept as converted: 1 changed and 0 deleted input files" in summary.text()
    assert "quantile boundaries carried from version 1: the rows added since move their rank" in summary.text()
    manifest = read_version(str(out)).manifest
    assert manifest.table.columns["v"].source_type == "double" and manifest.num_files_seen == 110
    (source / "p1.csv").write_text(parts[1].to_csv(sep=";", index=False))  # as version 1 read it
    convert_table(spark, options(source, full, mode="error", **semicolon))
    assert records(out) == records(full)
    assert_merged_like_full(out, full)
