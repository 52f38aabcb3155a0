"""What every Horovod process runs: build the Estimator, train, evaluate its part of the split, and (rank 0) export."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from dataset.decode import BadRecord
from dataset.manifest import Manifest
from training.config import TrainConfig
from training.input import InputSpec
from training.model_spec import write_model_spec
from training.storage import DirSync, ShardStaging, checkpoint_listener, local_view_of, needs_staging, shard_staging
from training.warm_start import WarmStart, local_checkpoint


@dataclass(frozen=True)
class RunPlan:
    """Decided once on the driver, identical on every rank."""

    config: TrainConfig
    manifest: Manifest  # the dataset's, read once on the driver
    labels: tuple[str, ...]
    params: dict  # hyper-parameters, resolved against the model's defaults
    model_params: dict  # the Estimator's params: hyper-parameters plus what the model_fn needs from the data
    eval_split: str
    start_step: int  # the global step of the checkpoint in model_dir (0 when none)
    steps: int  # steps every rank runs now: target_step - start_step, or 0
    target_step: int
    num_proc: int
    skipped: dict[str, tuple[BadRecord, ...]] = field(default_factory=dict)  # --skip-undecodable: split → records
    lineage: dict = field(default_factory=dict)  # the data read: URL, version, manifest sha256 (dataset.versions)
    spec: dict = field(default_factory=dict)  # what the graph is built from (training.model_spec)
    warm_start: WarmStart | None = None  # --warm-start-from: the variables that start from there
    note: str | None = None  # a continued run keeping normalisation the version's statistics moved from: one line


def weights_checksum(estimator: Any) -> str:
    """SHA-256 over the trainable weights of the latest checkpoint (optimizer slots left out)."""
    digest = hashlib.sha256()
    for name in sorted(estimator.get_variable_names()):
        if not any(part in name for part in ("Adam", "Momentum", "_power", "global_step")):
            digest.update(name.encode())
            digest.update(estimator.get_variable_value(name).tobytes())
    return digest.hexdigest()


def _session_config(threads: int, local_rank: int) -> Any:
    import tensorflow as tf

    config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=threads, inter_op_parallelism_threads=threads)
    if tf.config.list_physical_devices("GPU"):
        config.gpu_options.allow_growth = True
        config.gpu_options.visible_device_list = str(local_rank)  # Horovod: one GPU per local rank
    return config


class FirstStepHook:
    """Records when this process's training session was ready and when its first step ended (seconds after
    `start`): the difference is what the first batch waited for (its data), plus one step."""

    def __init__(self, start: float) -> None:
        import tensorflow as tf

        outer = self

        class _Hook(tf.compat.v1.train.SessionRunHook):
            def after_create_session(self, session, coord) -> None:
                outer.session_seconds = time.perf_counter() - start

            def after_run(self, run_context, run_values) -> None:
                if outer.seconds is None:
                    outer.seconds = time.perf_counter() - start

        self.start, self.seconds, self.session_seconds, self.hook = start, None, None, _Hook()


@contextlib.contextmanager
def _naming_bad_records(
    staging: ShardStaging, manifest: Manifest, split: str, spec: InputSpec, own: tuple[str, ...]
) -> Iterator[None]:
    """tf.data's errors for damaged records name neither file nor record: say which shard could not be fetched, or
    find the corrupt shard among the files this rank reads, else (local data) the first record whose image does not
    decode, and say which."""
    import tensorflow as tf

    from dataset.check import find_corrupt_shard
    from dataset.errors import DatasetError
    from training.kinds import kind_for

    try:
        yield
    except tf.errors.OpError as err:
        failure = getattr(spec.feed, "failure", None)
        if failure:
            raise DatasetError(failure) from None
        if not isinstance(err, (tf.errors.DataLossError, tf.errors.UnknownError, tf.errors.InvalidArgumentError)):
            raise
        corrupt = find_corrupt_shard(manifest, list(staging.scannable(spec, own)))
        if corrupt is not None:
            raise DatasetError(corrupt) from None
        scan = kind_for(manifest).scan_undecodable if staging.folder is None else None  # staged: a part of the split
        bad = scan(staging.data, manifest, split, True) if scan is not None else []
        if not bad:
            raise
        raise DatasetError(
            f"cannot decode the image of {bad[0].text()}; convert the data again (the default --verify decode "
            "rejects such files) or train with --skip-undecodable"
        ) from None


def train_on_rank(plan: RunPlan) -> dict[str, Any]:
    """The Horovod process body; returns this rank's figures (rank 0 adds metrics and the export)."""
    import horovod.tensorflow as hvd
    import tensorflow as tf

    tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.ERROR)
    hvd.init()  # Horovod: join the other processes
    rank, size = hvd.rank(), hvd.size()  # Horovod: who am I, how many are we
    config = plan.config
    if config.fail_on_rank == rank:
        raise RuntimeError(f"injected failure on rank {rank} (fail_on_rank)")
    if config.deterministic:  # Keras draws the seeds of unseeded initializers from Python's `random`
        tf.keras.utils.set_random_seed(config.seed)
    # On an object store: rank 0 trains into a local copy of model_dir (a rank that trains nothing evaluates the
    # stored checkpoint, so it fetches it too), and every rank reads local copies of its shards (training/storage.py).
    fetch = rank == 0 or plan.steps == 0  # Horovod: rank 0 resumes from the checkpoint; the others get its weights
    warm = plan.warm_start if rank == 0 and plan.steps > 0 else None  # Horovod: rank 0's weights are broadcast
    with contextlib.ExitStack() as stack:
        model_dir = stack.enter_context(local_view_of(config.model_dir, fetch))
        staging = stack.enter_context(shard_staging(config.data, config.stream, plan.manifest))
        warm_from = stack.enter_context(local_checkpoint(warm.source)) if warm else None
        sync = DirSync(model_dir, config.model_dir) if rank == 0 and needs_staging(config.model_dir) else None
        if rank == 0 and plan.steps > 0:  # Horovod: rank 0 records what the checkpoints it writes were built from
            write_model_spec(model_dir, plan.spec)
        settings = warm.settings(warm_from) if warm else None
        return _run_rank(plan, rank, size, model_dir, staging, sync, settings)


def _run_rank(
    plan: RunPlan,
    rank: int,
    size: int,
    model_dir: str,
    staging: ShardStaging,
    sync: DirSync | None,
    warm_start: Any = None,
) -> dict[str, Any]:
    """Train, evaluate and export with `model_dir` (local) and shards as `staging` gives them; `warm_start`: the
    `WarmStartSettings` of rank 0 with --warm-start-from."""
    import horovod.tensorflow as hvd
    import tensorflow as tf

    from training.evaluate import evaluate_on_rank
    from training.export import export_model
    from training.hooks import ExamplesPerSecondHook
    from training.input import train_input_fn
    from training.kinds import kind_for, split_input_spec

    config = plan.config
    threads = max(1, (os.cpu_count() or 1) // hvd.local_size())  # Horovod: ranks on one machine share its cores
    manifest = plan.manifest
    kind = kind_for(manifest)
    params = dict(plan.model_params, horovod=True)

    run_config = tf.estimator.RunConfig(
        model_dir=model_dir if rank == 0 else None,  # Horovod: only rank 0 writes checkpoints and summaries
        save_checkpoints_steps=config.checkpoint_steps,
        save_summary_steps=config.summary_steps if rank == 0 else 10**9,  # Horovod: summaries from rank 0 only
        log_step_count_steps=config.summary_steps,
        keep_checkpoint_max=3,
        tf_random_seed=config.seed,
        session_config=_session_config(threads, hvd.local_rank()),  # Horovod: pin the local GPU, if any
    )
    estimator = tf.estimator.Estimator(
        model_fn=kind.model_fn(manifest), params=params, config=run_config, warm_start_from=warm_start
    )
    speed = ExamplesPerSecondHook(config.batch_size, config.summary_steps, model_dir if rank == 0 else None, size)
    result: dict[str, Any] = {"rank": rank, "size": size, "steps": plan.steps}
    start = time.perf_counter()
    if plan.steps > 0:
        first_step = FirstStepHook(time.perf_counter())  # from before the shards are fetched
        spec = split_input_spec(
            config.data,
            manifest,
            config.train_split,
            plan.params,
            threads,
            config.keep_labels,
            training=True,
            skip=plan.skipped.get(config.train_split, ()),
        )
        staged = time.perf_counter()
        spec, own = staging.rank_spec(spec, rank, size)  # Horovod: this rank's shards, on local disk
        result["staging_seconds"] = time.perf_counter() - staged  # copy-first: the share's copy
        spec = dataclasses.replace(spec, deterministic=config.deterministic)
        train = train_input_fn(
            spec, config.batch_size, plan.steps, rank, size, config.seed + plan.start_step, config.shuffle_buffer
        )
        hooks = [hvd.BroadcastGlobalVariablesHook(0), speed, first_step.hook]  # Horovod: start from rank 0's weights
        listeners = [checkpoint_listener(sync)] if sync else []
        with staging.reading(spec), _naming_bad_records(staging, manifest, config.train_split, spec, own):
            estimator.train(train, hooks=hooks, saving_listeners=listeners)
        result.update(first_step_seconds=first_step.seconds, session_seconds=first_step.session_seconds)
        if staging.streams:  # from the object store while training: disk high-water mark, fetches
            result["stream"] = spec.feed.stats().as_dict()
    result.update(train_seconds=time.perf_counter() - start, examples_per_sec=speed.examples_per_second)
    if estimator.latest_checkpoint():
        result["weights_sha256"] = weights_checksum(estimator)
        result["global_step"] = int(estimator.get_variable_value("global_step"))
    spec = split_input_spec(
        config.data,
        manifest,
        plan.eval_split,
        plan.params,
        threads,
        config.keep_labels,
        skip=plan.skipped.get(plan.eval_split, ()),
    )
    spec, own = staging.rank_spec(spec, rank, size)  # Horovod: this rank's part of the split, on local disk
    # A rank that trained evaluates its own final checkpoint (the same weights as rank 0's); else rank 0's.
    checkpoint = estimator.latest_checkpoint() or tf.train.latest_checkpoint(model_dir)
    start = time.perf_counter()
    with staging.reading(spec), _naming_bad_records(staging, manifest, plan.eval_split, spec, own):
        # Horovod: every rank evaluates its part of the split; the metric sums are combined
        metrics = evaluate_on_rank(estimator, spec, config.batch_size, rank, size, plan.eval_split, checkpoint)
    result.update(metrics={k: float(v) for k, v in metrics.items()}, eval_seconds=time.perf_counter() - start)
    if rank == 0 and config.export:  # Horovod: the export once, by rank 0
        receiver = kind.serving_receiver(manifest, params)
        result["export_path"] = export_model(
            estimator, f"{model_dir}/export", list(plan.labels), receiver, manifest, plan.lineage, plan.spec
        )
    if sync is not None:  # Horovod: rank 0 uploads its model_dir; the store's export path is reported
        sync()
        if "export_path" in result:
            result["export_path"] = sync.store_path(result["export_path"])
    return result
