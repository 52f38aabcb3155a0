"""`make airflow-demo`: the DAG tfrecordpipe_spark for two daily data intervals, for real, with `airflow dags test`.

Interval 1 (2026-01-02): 1,500 of scikit-learn's digits are in the image folder; convert (an append
on a missing dataset: a full conversion, version 1) → validate → train (2 Horovod processes) → predict.
Then the other 297 digits arrive in the same label folders. Interval 2 (2026-01-03): convert appends
only those (version 2), train continues from the model dir's checkpoint on version 2, predict.
Each task is a SparkSubmitOperator on a local Spark (`local[2]`) with spark-submit and Python from the
project's .venv. Prints each task's state and summary lines, then per interval the dataset version,
the files converted and the test accuracy the predict task measured.

    .venv-airflow/bin/python deploy/airflow/demo.py --workdir airflow_demo_output --project-python .venv/bin/python

Runs under Airflow's environment (.venv-airflow); the tests import `run_dag` from here too.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "deploy" / "airflow" / "dags"
DAG_ID = "tfrecordpipe_spark"
TASKS = ("convert", "validate", "train", "predict")
# How each job's summary lines start (what it prints to stdout when it succeeds).
SUMMARY = {"convert": ("Converted ", "version ", "nothing new "), "validate": ("OK ",),
           "train": ("Trained ", "eval on ", "trained on: "), "predict": ("model ", "Wrote ")}
LOGICAL_DATE = "2026-01-02"  # ds_nodash 20260102: the predictions land in .../20260102
# The demo's two data intervals (their logical dates) and what is in the image folder for each: digits
# 0000-1499 for interval 1; 1500-1796 arrive before interval 2.
FIRST_BATCH = 1500
INTERVALS = ("2026-01-02", "2026-01-03")
AIRFLOW = Path(sys.executable).parent / "airflow"

# The one place that makes the demo images (the project's function, run by the project's Python).
WRITE_IMAGES = "import sys; from pathlib import Path; from demo.data import write_digits; print(write_digits(Path(sys.argv[1])))"
# The dataset's current version, by the project's own job (the line it marks with `*`).
VERSIONS = "jobs.versions"


@dataclass
class DagRunResult:
    returncode: int  # of `airflow dags test`: 1 when the run failed
    states: dict[str, str]  # task_id -> state, from the metadata database
    logs: dict[str, str]  # task_id -> what its last attempt logged (spark-submit's output included)
    log_file: Path  # everything `airflow dags test` printed
    seconds: float
    accuracy: float | None = None  # what the predict task measured
    predictions_line: str | None = None
    errors: dict[str, str] = field(default_factory=dict)  # task_id -> the job's one-line `error: ...`
    summaries: dict[str, list[str]] = field(default_factory=dict)  # task_id -> the job's summary lines


def write_images(images: Path, project_python: str) -> int:
    """scikit-learn's digits as images/<digit>/<n>.png (kept when already there)."""
    done = subprocess.run([project_python, "-c", WRITE_IMAGES, str(images)], cwd=ROOT, check=True,
                          capture_output=True, text=True)
    return int(done.stdout.split()[-1])


def arrive(source: Path, images: Path, first: int, stop: int) -> list[Path]:
    """Copy the digits numbered first..stop-1 from `source` into the image folder `images` (same label folders)."""
    arrived = []
    for path in sorted(source.glob("*/*.png")):
        if first <= int(path.stem) < stop:
            target = images / path.parent.name / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            arrived.append(target)
    return arrived


def current_version(dataset: Path, project_python: str) -> str | None:
    """The line `jobs/versions.py --data DATASET` prints for the current version (marked `*`), unmarked."""
    done = subprocess.run([project_python, "-m", VERSIONS, "--data", str(dataset)], cwd=ROOT, capture_output=True,
                          text=True)
    current = [line for line in done.stdout.splitlines() if line.startswith("*")]
    return current[0][1:].strip() if done.returncode == 0 and current else None


def environment(airflow_home: Path, project_python: str, retries: int = 0) -> dict[str, str]:
    """Airflow in a fresh home; the `spark_default` connection is local[2] with the project's spark-submit."""
    env = dict(os.environ)
    venv_bin = str(Path(project_python).parent)
    env.update({
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # Provider 6.x takes only the names spark-submit, spark2-submit, spark3-submit for the
        # binary and finds it on PATH: the project venv's bin/ goes first.
        "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps({"conn_type": "spark", "host": "local[2]"}),
        "PATH": venv_bin + os.pathsep + env.get("PATH", ""),
        "PYSPARK_PYTHON": project_python,
        "PYSPARK_DRIVER_PYTHON": project_python,
        "TFRECORDPIPE_HOME": str(ROOT),
        "TFRECORDPIPE_PY_FILES": "",  # the project is installed in the venv (pip install -e .)
        "TFRECORDPIPE_RETRIES": str(retries),
    })
    env.pop("SPARK_HOME", None)  # spark-submit finds the venv's pyspark
    java17 = Path("/usr/lib/jvm/java-17-openjdk-amd64")
    if "JAVA_HOME" not in env and java17.exists():
        env["JAVA_HOME"] = str(java17)
    return env


@contextmanager
def airflow_home() -> Iterator[Path]:
    """A fresh AIRFLOW_HOME (its metadata database made by the first run), removed afterwards."""
    home = Path(tempfile.mkdtemp(prefix="airflow-home-"))
    try:
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


def run_dag(conf: dict, project_python: str, log_file: Path, retries: int = 0, logical_date: str = LOGICAL_DATE,
            home: Path | None = None) -> DagRunResult:
    """`airflow dags test` for `logical_date` (after `airflow db migrate`, when `home` has no database yet);
    states and task logs read back. Without `home`, a fresh one for this run alone."""
    if home is None:
        with airflow_home() as fresh:
            return run_dag(conf, project_python, log_file, retries, logical_date, fresh)
    start = time.perf_counter()
    log_file.parent.mkdir(parents=True, exist_ok=True)
    env = environment(home, project_python, retries)
    with log_file.open("w") as log:
        if not (home / "airflow.db").exists():
            subprocess.run([str(AIRFLOW), "db", "migrate"], env=env, stdout=log, stderr=subprocess.STDOUT,
                           check=True, timeout=300)
        command = [str(AIRFLOW), "dags", "test", DAG_ID, logical_date, "--conf", json.dumps(conf)]
        done = subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=log_file.parent,
                              timeout=1800)
    with closing(sqlite3.connect(home / "airflow.db")) as db:
        states = dict(db.execute(
            "SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = "
            "(SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1)", (DAG_ID, DAG_ID)))
    output = log_file.read_text(errors="replace")
    result = DagRunResult(done.returncode, states, task_logs(output), log_file, time.perf_counter() - start)
    found = re.search(r"Wrote \d+ predictions to [^;\s]+; accuracy (\d\.\d+)", result.logs.get("predict", ""))
    if found:
        result.predictions_line, result.accuracy = found.group(0), float(found.group(1))
    for task_id, text in result.logs.items():
        result.summaries[task_id] = job_lines(text, SUMMARY.get(task_id, ()))
        error = re.search(r"\berror: .*", text)
        if error:  # the job's stderr line, less the logger's suffix
            result.errors[task_id] = re.sub(r"\s+\[airflow\.task\.\S+\].*$", "", error.group(0)).strip()
    return result


def task_logs(output: str) -> dict[str, str]:
    """task_id -> the lines `airflow dags test` printed between that task's start and end (its last attempt)."""
    logs: dict[str, str] = {}
    for found in re.finditer(r"\[DAG TEST\] starting task_id=(\S+).*?(?:\[DAG TEST\] end task task_id=\1\b|\Z)",
                             output, re.S):
        logs[found.group(1)] = found.group(0)
    return logs


def job_lines(log: str, prefixes: tuple[str, ...]) -> list[str]:
    """The lines a job printed that start with one of `prefixes`, as the task logged them."""
    if not prefixes:
        return []
    pattern = r"\] ((?:%s).*?)\s+\[airflow\.task\.hooks\." % "|".join(map(re.escape, prefixes))
    return re.findall(pattern, log)


def files_converted(result: DagRunResult) -> int | None:
    """How many images the convert task wrote, from its summary's first line."""
    found = re.search(r"^Converted (\d+) images ", " ".join(result.summaries.get("convert", [])[:1]))
    return int(found.group(1)) if found else None


def print_run(result: DagRunResult) -> None:
    for task_id in TASKS:
        print(f"  {task_id:<9} {result.states.get(task_id, 'not run')}")
        lines = result.summaries.get(task_id, []) + ([result.errors[task_id]] if task_id in result.errors else [])
        for line in lines:
            print(f"            {line}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="airflow-demo", description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="airflow_demo_output", help="images, dataset, model, predictions, logs")
    parser.add_argument("--project-python", default=str(ROOT / ".venv" / "bin" / "python"),
                        help="the project's Python (its bin/ has spark-submit)")
    parser.add_argument("--epochs", type=float, default=3, help="passes over the training split, per interval")
    parser.add_argument("--num-proc", type=int, default=2, help="Horovod processes")
    args = parser.parse_args(argv)
    if not Path(args.project_python).exists() or not (Path(args.project_python).parent / "spark-submit").exists():
        print(f"error: {args.project_python} or the spark-submit beside it is missing (run make setup)", file=sys.stderr)
        return 2
    workdir = Path(args.workdir).resolve()
    source, images = workdir / "arriving", workdir / "digits"
    try:
        count = write_images(source, args.project_python)
    except subprocess.CalledProcessError as err:
        last = (err.stderr or "").strip().splitlines()[-1:] or [f"exit code {err.returncode}"]
        print(f"error: writing the digits images failed: {last[0]}", file=sys.stderr)
        return 2
    for name in ("digits", "dataset", "model", "predictions"):  # a rerun starts from interval 1 again
        shutil.rmtree(workdir / name, ignore_errors=True)
    conf = {"images": str(images), "dataset": str(workdir / "dataset"), "model_dir": str(workdir / "model"),
            "predictions": str(workdir / "predictions"), "num_shards": 2, "num_proc": args.num_proc,
            "epochs": args.epochs, "split": "test"}
    batches = ((0, FIRST_BATCH), (FIRST_BATCH, count))
    rows = []
    with airflow_home() as home:
        for number, (logical_date, (first, stop)) in enumerate(zip(INTERVALS, batches), start=1):
            arrived = arrive(source, images, first, stop)
            total = len(list(images.glob("*/*.png")))
            print(f"interval {number} ({logical_date}): {len(arrived)} new PNGs arrived in {images} ({total} in all)")
            log_file = workdir / f"airflow-{logical_date}.log"
            print(f"running:     airflow dags test {DAG_ID} {logical_date} (log: {log_file})", flush=True)
            result = run_dag(conf, args.project_python, log_file, logical_date=logical_date, home=home)
            print_run(result)
            if result.returncode != 0 or result.accuracy is None:
                print(f"error: interval {number}'s DAG run failed after {result.seconds:.0f} s; see {log_file}",
                      file=sys.stderr)
                return 1
            version = current_version(workdir / "dataset", args.project_python)
            print(f"  version   {version or '-'}")
            print(f"  DAG run took {result.seconds:.0f} s", flush=True)
            row = (number, logical_date, (version or "-").split()[0], files_converted(result), result.accuracy)
            # what the interval must have done: version N holding exactly the files that arrived before it
            if row[2:4] != (str(number), len(arrived)):
                print(f"error: interval {number} should commit version {number} of {len(arrived)} new files; it "
                      f"made version {row[2]} of {row[3]} (see {log_file})", file=sys.stderr)
                return 1
            rows.append(row)
    print(f"dataset:     {conf['dataset']}\nmodel:       {workdir / 'model'} (metrics.json: one entry per version)\n"
          f"predictions: {workdir / 'predictions'}/<ds_nodash>")
    print("interval  ds          version  files converted  test accuracy")
    for number, logical_date, version, converted, accuracy in rows:
        print(f"{number:<9} {logical_date}  {version:<7}  {converted if converted is not None else '-':<15}  "
              f"{accuracy:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
