"""Build what executors need and print (or run) the spark-submit command of a job.

    python deploy/spark-submit/submit.py --target yarn --job convert_images -- --input hdfs:///raw --output hdfs:///ds
    python deploy/spark-submit/submit.py --target yarn --job convert_images -- --input hdfs:///raw --output hdfs:///ds \
        --mode append --list-prefix cats/2026-12-06      # a scheduled run: only the new files, as a new version
    python deploy/spark-submit/submit.py --target standalone --master spark://host:7077 --job train --run -- --data ...

The project ships as a zip on `--py-files`; the Python environment as a venv-pack archive on
`--archives env.tar.gz#environment` (`--env-archive`, built with `--build-env`), or, where the
executors already have it (`--python`), by path.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
JOBS = ("convert_images", "convert_table", "validate", "train", "predict")
PACKAGES = ("dataset", "conversion", "training", "inference", "demo", "jobs")
# Recommended confs: many small files per task, Arrow batches sized for image rows, retries.
CONFS = {
    "spark.sql.files.openCostInBytes": "134217728",
    "spark.sql.execution.arrow.maxRecordsPerBatch": "256",
    "spark.task.maxFailures": "4",
    "spark.python.worker.reuse": "true",
}
MASTERS = {"yarn": "yarn", "k8s": "k8s://https://KUBERNETES_API:443", "standalone": "spark://MASTER:7077"}


def build_zip(out: Path) -> Path:
    """The project's packages as a zip for --py-files."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for package in PACKAGES:
            for path in sorted((ROOT / package).rglob("*.py")):
                archive.write(path, path.relative_to(ROOT).as_posix())
    return out


def build_env(out: Path) -> Path:
    """The current virtualenv packed with venv-pack (pip install venv-pack)."""
    subprocess.run([sys.executable, "-m", "venv_pack", "-o", str(out), "--force"], check=True)
    return out


def command(args: argparse.Namespace, zip_path: Path) -> list[str]:
    master = args.master or MASTERS[args.target]
    cmd = [args.spark_submit, "--master", master, "--py-files", str(zip_path)]
    if args.target in ("yarn", "k8s"):
        cmd += ["--deploy-mode", "cluster"]
    if args.env_archive:
        cmd += ["--archives", f"{args.env_archive}#environment",
                "--conf", "spark.pyspark.python=./environment/bin/python"]
    elif args.python:
        cmd += ["--conf", f"spark.pyspark.python={args.python}", "--conf", f"spark.pyspark.driver.python={args.python}"]
    for key, value in {**CONFS, **dict(c.split("=", 1) for c in args.conf)}.items():
        cmd += ["--conf", f"{key}={value}"]
    if args.packages:
        cmd += ["--packages", args.packages]
    if args.jars:
        cmd += ["--jars", args.jars]
    return cmd + [str(ROOT / "jobs" / f"{args.job}.py"), *args.job_args]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=sorted(MASTERS), default="standalone")
    parser.add_argument("--master", help="master URL (default: a placeholder for the target)")
    parser.add_argument("--job", choices=JOBS, required=True)
    parser.add_argument("--dist", default=str(ROOT / "dist"), help="where the zip and the env archive go")
    parser.add_argument("--build-env", action="store_true", help="pack this virtualenv with venv-pack")
    parser.add_argument("--env-archive", help="an env.tar.gz to ship with --archives")
    parser.add_argument("--python", help="the executors' Python, when they have the environment already")
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--packages", help="Maven coordinates for --packages")
    parser.add_argument("--jars", help="jar paths for --jars")
    parser.add_argument("--spark-submit", default="spark-submit", help="the spark-submit executable")
    parser.add_argument("--run", action="store_true", help="run the command instead of printing it")
    parser.add_argument("job_args", nargs=argparse.REMAINDER, help="-- then the job's own arguments")
    args = parser.parse_args(argv)
    args.job_args = args.job_args[1:] if args.job_args[:1] == ["--"] else args.job_args
    dist = Path(args.dist)
    zip_path = build_zip(dist / "tfrecordpipe.zip")
    if args.build_env:
        args.env_archive = str(build_env(dist / "env.tar.gz"))
    cmd = command(args, zip_path)
    if not args.run:
        print(shlex.join(cmd))
        return 0
    return subprocess.run(cmd).returncode


if __name__ == "__main__":
    sys.exit(main())
