"""Starting Spark for the tfrecord jobs, in a fresh process as a user runs them: the jar for the
Spark's Scala version, and a package no repository serves as one line on the console."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from dataset.versions import read_manifest
from jobs.tfrecord_jar import TFRECORD_JAR_ENV, installed_scala, tfrecord_package
from tests.conftest import needs_tfrecord_jar

REPO = Path(__file__).resolve().parents[1]
SCALA = installed_scala()  # of the pyspark running the tests: 2.12 on Spark 3.5, 2.13 on Spark 4
OTHER = {"2.12": "2.13", "2.13": "2.12"}[SCALA]
HOW = (
    f"set {TFRECORD_JAR_ENV}=/path/to/spark-tfrecord_{SCALA}-0.7.0.jar, or pass --packages {tfrecord_package(SCALA)}, "
    f"or on Databricks install the Maven library {tfrecord_package(SCALA)} (Scala {SCALA})"
)
IVY_SETTINGS = """<ivysettings>
  <settings defaultResolver="only"/>
  <resolvers><ibiblio name="only" m2compatible="true" root="{root}"/></resolvers>
</ivysettings>
"""


def run_job(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in (TFRECORD_JAR_ENV, "PYSPARK_SUBMIT_ARGS")}
    environ["PYTHONPATH"] = os.pathsep.join([str(REPO), environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=cwd, env=environ, capture_output=True, text=True, timeout=300
    )


def a_csv(tmp_path: Path) -> Path:
    csv = tmp_path / "t.csv"
    csv.write_text("id,x,label\n" + "".join(f"{i},{i * 0.5},{'ab'[i % 2]}\n" for i in range(10)))
    return csv


def maven_conf(tmp_path: Path, root: str) -> list[str]:
    """--conf entries that make Ivy resolve from `root` alone, with an empty cache of its own."""
    settings = tmp_path / "ivysettings.xml"
    settings.write_text(IVY_SETTINGS.format(root=root))
    return ["--conf", f"spark.jars.ivySettings={settings}", "--conf", f"spark.jars.ivy={tmp_path / 'ivy'}"]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens there once the socket is closed


def test_a_jar_for_the_other_scala_version_is_one_line_before_spark_starts(tmp_path):
    jar = tmp_path / "tfrecord.jar"  # named by no Scala suffix: its Maven artifact id inside tells
    with zipfile.ZipFile(jar, "w") as archive:
        archive.writestr(f"META-INF/maven/com.linkedin.sparktfrecord/spark-tfrecord_{OTHER}/pom.properties", "")
    args = ["jobs.convert_table", "--input", str(a_csv(tmp_path)), "--label", "label", "--output", str(tmp_path / "o")]
    done = run_job(args, tmp_path, **{TFRECORD_JAR_ENV: str(jar)})
    import pyspark

    assert done.returncode == 2
    assert done.stderr == (
        f"error: {TFRECORD_JAR_ENV} gives tfrecord.jar, spark-tfrecord for Scala {OTHER}, and this Spark "
        f"{pyspark.__version__} runs Scala {SCALA}: {HOW}\n"
    )
    assert done.stdout == "" and not (tmp_path / "o").exists()


def test_a_package_no_repository_serves_is_one_line_and_exit_2(tmp_path):
    conf = maven_conf(tmp_path, f"http://127.0.0.1:{closed_port()}/maven2/")
    args = ["jobs.convert_table", "--input", str(a_csv(tmp_path)), "--label", "label", "--output", str(tmp_path / "o")]
    done = run_job([*args, *conf], tmp_path)
    package = tfrecord_package(SCALA)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"error: Spark did not start: no repository served {package} (not found): {HOW}\n"
    assert not (tmp_path / "o").exists()
    # the user's own package too, named as given, with what to check
    done = run_job([*args, *conf, "--packages", "org.example:nothing_2.13:1.0"], tmp_path)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        f"error: Spark did not start: no repository served org.example:nothing_2.13:1.0 (not found), "
        f"{package} (not found): {HOW}\n"
    )


def test_another_failure_of_the_start_shows_what_spark_submit_printed(tmp_path):
    args = ["jobs.convert_table", "--input", str(a_csv(tmp_path)), "--label", "label", "--output", str(tmp_path / "o")]
    missing = tmp_path / "no-such-ivysettings.xml"
    done = run_job([*args, "--conf", f"spark.jars.ivySettings={missing}"], tmp_path)
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert lines[-1].startswith(f"error: Spark did not start with --packages {tfrecord_package(SCALA)} (")
    assert lines[-1].endswith(f"): {HOW}")
    assert any(str(missing) in line for line in lines[:-1])  # Ivy's own words, replayed before our line


@pytest.mark.slow
@needs_tfrecord_jar
def test_a_package_from_a_repository_loads_and_the_job_converts(tmp_path):
    """What a user without SPARK_TFRECORD_JAR gets: Maven coordinates for the Spark's Scala version."""
    folder = tmp_path / "repo" / "com" / "linkedin" / "sparktfrecord" / f"spark-tfrecord_{SCALA}" / "0.7.0"
    folder.mkdir(parents=True)
    (folder / f"spark-tfrecord_{SCALA}-0.7.0.jar").write_bytes(Path(os.environ[TFRECORD_JAR_ENV]).read_bytes())
    (folder / f"spark-tfrecord_{SCALA}-0.7.0.pom").write_text(
        "<project><modelVersion>4.0.0</modelVersion><groupId>com.linkedin.sparktfrecord</groupId>"
        f"<artifactId>spark-tfrecord_{SCALA}</artifactId><version>0.7.0</version></project>"
    )
    out = tmp_path / "out"
    args = ["jobs.convert_table", "--input", str(a_csv(tmp_path)), "--label", "label", "--key", "id"]
    done = run_job([*args, "--output", str(out), *maven_conf(tmp_path, (tmp_path / "repo").as_uri() + "/")], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    # what spark-submit printed while it resolved the package is passed on once the JVM is up, as it comes
    assert done.stdout.startswith(f":: loading settings :: file = {tmp_path / 'ivysettings.xml'}\n")
    assert f"\nConverted 10 of 10 rows into {out} in " in done.stdout
    assert f"found com.linkedin.sparktfrecord#spark-tfrecord_{SCALA};0.7.0 in only" in done.stderr
    assert read_manifest(str(out)).num_records == 10
    assert list((tmp_path / "ivy" / "jars").iterdir()) == [
        tmp_path / "ivy" / "jars" / f"com.linkedin.sparktfrecord_spark-tfrecord_{SCALA}-0.7.0.jar"
    ]
