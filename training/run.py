"""The driver side of training: plan the run, start the Horovod processes on Spark, write metrics.json."""

from __future__ import annotations

import collections
import dataclasses
import io
import json
import os
import re
import sys
import time
from dataclasses import dataclass
from typing import Any, TextIO

from pyspark.sql import SparkSession

from dataset.decode import BadRecord
from dataset.errors import TrainingError
from dataset.manifest import Manifest, shard_urls
from dataset.versions import lineage, public_url, read_version
from training.config import TrainConfig, pick_eval_split, resolve_params
from training.history import METRICS_FILE, earlier_entries, with_entry
from training.input import epochs_to_steps, split_records
from training.kinds import kind_for, split_input_spec
from training.model_spec import MODEL_SPEC_FILE, model_spec, read_model_spec
from training.rank import RunPlan, train_on_rank
from training.spec_diff import first_difference, moved_statistics
from training.storage import local_view_of, shard_staging, write_text
from training.warm_start import plan_warm_start

START_TIMEOUT_S = 120  # Horovod: how long Spark may take to start every process
GLOO_TIMEOUT_S = 60  # Horovod: how long a rank waits for the others in a collective before failing


@dataclass(frozen=True)
class TrainResult:
    metrics: dict[str, Any]
    per_rank: list[dict[str, Any]]
    warm_start_text: str | None = None

    def text(self) -> str:
        m = self.metrics
        evaluated = ", ".join(f"{k} {v:.4f}" for k, v in sorted(m["eval"].items()) if k != "global_step")
        return "\n".join(
            [
                f"Trained {m['steps_run']} steps on {m['num_proc']} processes to global step {m['global_step']} "
                f"in {m['wall_seconds']:.1f} s ({m['examples_per_sec_total']:.0f} examples/s)",
                f"  eval on {m['eval_split']}: {evaluated}",
                *(
                    [
                        f"  skipped undecodable records: {', '.join(f'{s} {n}' for s, n in m['skipped_undecodable'].items())}"
                    ]
                    if "skipped_undecodable" in m
                    else []
                ),
                *([f"  {self.warm_start_text}"] if self.warm_start_text else []),
                f"  trained on: {', '.join(_version_text(e) for e in m.get('trained_on', [])) or 'nothing yet'}",
                f"  model_dir: {m['model_dir']}",
                f"  export: {m.get('export_path') or 'none'}",
            ]
        )


def latest_step(model_dir: str) -> int | None:
    """The global step of the latest checkpoint in `model_dir` (None when there is none); on an object store, read
    from a local copy of that checkpoint."""
    import tensorflow as tf

    with local_view_of(model_dir) as local:
        latest = tf.train.latest_checkpoint(local) if tf.io.gfile.exists(local) else None
        return int(tf.train.load_variable(latest, "global_step")) if latest else None


def check_continues(model_dir: str, step: int, spec: dict, where: str) -> dict:
    """A model dir holding a checkpoint continues only on data that builds the same graph (`spec`, built with the
    numbers the model keeps: `Kind.keep_constants`); returns the model dir's record.

    Raises:
        TrainingError: in one line, what differs (or that the model dir does not say what it was trained on),
            and what to do.
    """
    model = f"model dir {public_url(model_dir)}"
    advice = f"train into a fresh --model-dir, or start from this model with --warm-start-from {public_url(model_dir)}"
    recorded = read_model_spec(model_dir)
    if recorded is None:
        raise TrainingError(
            f"{model} holds a checkpoint (global step {step}) but no {MODEL_SPEC_FILE} saying what it was trained "
            f"on, so {where} cannot be checked against it; {advice}"
        )
    found = first_difference(recorded, spec, where, model)
    if found:
        raise TrainingError(f"{found}; {advice}")
    return recorded


def statistics_note(model_dir: str, recorded: dict, version_spec: dict, version: int) -> str | None:
    """The info line of a continued run whose version's statistics moved from those the model keeps."""
    moved = moved_statistics(recorded, version_spec)
    if moved is None:
        return None
    entries = earlier_entries(model_dir)
    built = entries[0]["data"].get("version") if entries else None
    on = f" (version {built})" if built is not None else ""
    return (
        f"continuing with the normalisation model dir {public_url(model_dir)} was built with{on}; "
        f"version {version}'s statistics moved: {moved}"
    )


def plan_run(config: TrainConfig, num_proc: int) -> RunPlan:
    """Check the data and decide the steps every rank will run.

    Raises:
        DatasetError: the data folder is missing, unfinished or lacks the split.
        TrainingError: the options do not fit the data.
    """
    version = read_version(config.data, config.data_version)
    manifest = version.manifest
    kind = kind_for(manifest)
    params = resolve_params(kind.default_params, config.params)
    if config.train_split not in manifest.splits:
        raise TrainingError(
            f"split {config.train_split!r} is not in {config.data}; it has {', '.join(sorted(manifest.splits))}"
        )
    if config.keep_labels is not None:
        split_input_spec(config.data, manifest, config.train_split, params, 1, config.keep_labels)  # checks the labels
    eval_split = pick_eval_split(manifest.splits, config.eval_split)
    labels = tuple(config.keep_labels) if config.keep_labels else manifest.labels
    if (manifest.table is None or manifest.table.task == "classification") and len(labels) < 2:
        raise TrainingError(
            f"{config.data} has {len(labels)} label{'' if len(labels) == 1 else 's'} ({', '.join(labels) or 'none'}) "
            "to train on; a classifier needs at least 2: add a label folder (or keep more --labels)"
        )
    records = split_records(manifest, config.train_split, config.keep_labels)
    if records < config.batch_size * num_proc:
        raise TrainingError(
            f"{records} training records cannot fill one global batch of {config.batch_size} x {num_proc} processes; "
            "lower --batch-size or --num-proc"
        )
    checkpoint = latest_step(config.model_dir)
    start = checkpoint or 0
    if config.max_steps is not None:
        target = config.max_steps
    else:  # on a continued run: epochs of the version read, on top of the checkpoint's step
        target = start + epochs_to_steps(config.epochs or 1.0, records, config.batch_size, num_proc)
    estimator_params = kind.model_params(manifest, config, params, labels)  # checks the feature spec, once
    spec = model_spec(kind, manifest, estimator_params, labels)
    warm, note = None, None
    if checkpoint is not None:  # before any Horovod process starts: the checkpoint must fit this version's graph
        if config.warm_start_from:
            raise TrainingError(
                f"--model-dir {public_url(config.model_dir)} already holds a checkpoint (global step {checkpoint}); "
                "--warm-start-from starts a new model: give a fresh --model-dir"
            )
        recorded, version_spec = read_model_spec(config.model_dir) if kind.keep_constants else None, spec
        if recorded is not None:  # the model keeps the numbers it was built with; the version's may have moved
            estimator_params = kind.keep_constants(estimator_params, recorded)
            spec = model_spec(kind, manifest, estimator_params, labels)
        recorded = check_continues(
            config.model_dir, checkpoint, spec, f"version {version.number} of {public_url(config.data)}"
        )
        note = (
            statistics_note(config.model_dir, recorded, version_spec, version.number) if kind.keep_constants else None
        )
    elif config.warm_start_from:
        warm = plan_warm_start(config.warm_start_from, kind, manifest, estimator_params, spec)
    skipped = _undecodable(config, manifest, (config.train_split, eval_split)) if config.skip_undecodable else {}
    return RunPlan(
        config,
        manifest,
        labels,
        params,
        estimator_params,
        eval_split,
        start,
        max(0, target - start),
        target,
        num_proc,
        skipped,
        lineage(config.data, version),
        spec,
        warm,
        note,
    )


def _undecodable(config: TrainConfig, manifest: Manifest, splits: tuple[str, ...]) -> dict[str, tuple[BadRecord, ...]]:
    """--skip-undecodable: the records of each split that the model's input cannot decode, found
    once on the driver (every record decoded), so that every rank skips the same ones and the
    count is of distinct records, not of skips over epochs.

    Raises:
        TrainingError: the dataset's kind has no records to skip.
    """
    scan = kind_for(manifest).scan_undecodable
    if scan is None:
        raise TrainingError(f"--skip-undecodable applies to image datasets; {config.data} is a {manifest.kind} dataset")
    with shard_staging(config.data) as staging:  # on an object store: every shard of the splits, copied here
        local = staging.splits_folder(manifest, splits)
        bad = {split: scan(local, manifest, split, False) for split in dict.fromkeys(splits)}  # copies keep their paths
    # the records keep the store's URLs of their shards
    to_url = dict(zip(_shards(local, manifest, splits), _shards(config.data, manifest, splits)))
    return {split: tuple(dataclasses.replace(b, shard=to_url[b.shard]) for b in found) for split, found in bad.items()}


def _shards(data: str, manifest: Manifest, splits: tuple[str, ...]) -> list[str]:
    return [url for split in dict.fromkeys(splits) for url in shard_urls(data, manifest, split)]


def check_num_proc(num_proc: int | None, slots: int) -> int:
    """The Horovod processes to start: `num_proc`, or every task slot Spark can give (`slots`).

    Raises:
        TrainingError: `num_proc` is below 1, or above `slots` (Horovod would wait for the missing
            tasks until its start timeout).
    """
    if num_proc is None:
        return slots
    if num_proc < 1:
        raise TrainingError(
            f"--num-proc must be at least 1, got {num_proc} (leave it out to use all {slots} task slots)"
        )
    if num_proc > slots:
        raise TrainingError(
            f"--num-proc {num_proc} is more than the {slots} task slots Spark can give "
            "(spark.sparkContext.defaultParallelism); lower --num-proc or give Spark more cores or executors"
        )
    return num_proc


def run_training(spark: SparkSession, config: TrainConfig, num_proc: int | None = None) -> TrainResult:
    """Train with Horovod on `num_proc` Spark tasks (default: the cores Spark can give); write metrics.json."""
    import horovod.spark

    num_proc = check_num_proc(num_proc, spark.sparkContext.defaultParallelism)
    plan = plan_run(config, num_proc)
    if plan.note:
        print(plan.note, flush=True)
    # a continued run adds to the model dir's list of versions trained on (read before anything starts)
    entries = earlier_entries(config.model_dir) if plan.warm_start is None else []
    start = time.perf_counter()
    env = dict(os.environ, HOROVOD_GLOO_TIMEOUT_SECONDS=str(GLOO_TIMEOUT_S), PYTHONUNBUFFERED="1")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    errors = _StderrTail(sys.stderr)
    try:
        per_rank = horovod.spark.run(  # Horovod: one training process per Spark task
            train_on_rank,
            args=(plan,),
            num_proc=num_proc,
            start_timeout=START_TIMEOUT_S,
            use_gloo=True,
            env=env,
            verbose=0,
            stdout=sys.stdout,
            stderr=errors,
        )
    except Exception as err:
        raise TrainingError(f"training failed: {errors.rank_error(str(err)) or _root_cause(err)}") from err
    wall = time.perf_counter() - start
    per_rank = sorted(per_rank, key=lambda r: r["rank"])
    chief = per_rank[0]
    metrics = {
        "eval": chief["metrics"],
        "eval_split": plan.eval_split,
        "global_step": chief.get("global_step", plan.start_step),
        "steps_run": plan.steps,
        "num_proc": num_proc,
        "batch_size_per_proc": config.batch_size,
        "examples_per_sec_per_rank": [r["examples_per_sec"] for r in per_rank],
        "examples_per_sec_total": sum(r["examples_per_sec"] for r in per_rank),
        "wall_seconds": wall,
        "eval_seconds": max(r["eval_seconds"] for r in per_rank),  # every rank evaluates its part
        "export_path": chief.get("export_path"),
        "model_dir": config.model_dir,
        "params": plan.params,
        "data": plan.lineage,  # lineage: the dataset URL, version and manifest sha256 this model was trained on
    }
    entry = {
        "data": plan.lineage,
        "steps": plan.steps,
        "global_step": metrics["global_step"],
        "eval_split": plan.eval_split,
        "eval": metrics["eval"],
    }
    if plan.warm_start is not None:
        warm = plan.warm_start
        metrics["warm_start"] = {"from": public_url(warm.source), "variables": list(warm.variables)}
        metrics["warm_start"]["fresh"] = list(warm.fresh)
        entry["warm_started_from"] = metrics["warm_start"]["from"]
    metrics["trained_on"] = with_entry(entries, entry)  # one entry per version trained on
    if config.skip_undecodable:
        metrics["skipped_undecodable"] = {split: len(bad) for split, bad in plan.skipped.items()}
        metrics["skipped_records"] = [record.text() for bad in plan.skipped.values() for record in bad]
    write_text(f"{config.model_dir}/{METRICS_FILE}", json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    return TrainResult(metrics, per_rank, plan.warm_start.text() if plan.warm_start else None)


def _version_text(entry: dict[str, Any]) -> str:
    """`version 2 (40 steps)` for an entry of metrics.json's trained_on."""
    return f"version {entry['data'].get('version')} ({entry['steps']} steps)"


class _StderrTail(io.TextIOBase):
    """Passes the ranks' stderr through and keeps its last lines, to name a failed rank's error."""

    def __init__(self, target: TextIO, keep: int = 2000) -> None:
        self._target = target
        self._lines: collections.deque[str] = collections.deque(maxlen=keep)

    def write(self, text: str) -> int:
        self._target.write(text)
        self._lines.extend(text.splitlines())
        return len(text)

    def flush(self) -> None:
        self._target.flush()

    def rank_error(self, failure: str) -> str | None:
        """`rank N: <its last exception line>` for the rank whose own error ended the job.

        That is the rank Horovod names first in `failure`, unless that rank only failed because Horovod
        shut down (its collective lost a peer): then the rank that raised an error of its own.
        """
        named = re.search(r"Process name: (\S+)", failure)
        if not named:
            return None
        errors = self._last_errors()
        first = errors.get(named.group(1))
        if first is None:
            return None
        if not first[1]:  # its own error
            return f"rank {named.group(1)}: {first[0]}"
        own = [(rank, error) for rank, (error, shutdown) in sorted(errors.items()) if not shutdown]
        return f"rank {own[0][0]}: {own[0][1]}" if own else f"rank {named.group(1)}: {first[0]}"

    def _last_errors(self) -> dict[str, tuple[str, bool]]:
        """Per rank: its last exception line, and whether its output says Horovod had shut down."""
        errors: dict[str, tuple[str, bool]] = {}
        shutdown: set[str] = set()
        for line in self._lines:
            found = re.match(r"^\[(\d+)\]<stderr>:(.*)$", line)
            if not found:
                continue
            rank, body = found.group(1), found.group(2).strip()
            if "Horovod has been shut down" in body:
                shutdown.add(rank)
            if re.match(r"^[\w.]+(Error|Exception|Exit)\b.*:", body):
                errors[rank] = (body, False)
        return {rank: (body, rank in shutdown) for rank, (body, _) in errors.items()}


def _root_cause(err: BaseException) -> str:
    """The last line of the innermost Python error a rank raised, without the JVM stack."""
    text = str(err)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        if ("Error:" in line or "Exception:" in line) and not line.startswith("at "):
            return line
    return lines[-1] if lines else type(err).__name__
