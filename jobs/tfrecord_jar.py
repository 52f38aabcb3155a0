"""Where Spark gets the spark-tfrecord data source (`format("tfrecord")`) from.

One setting, `SPARK_TFRECORD_JAR`: a local path or URL of `spark-tfrecord_2.12-0.7.0.jar`, added
to `spark.jars` (after any `--jars`). Unset, the jar comes from Maven by its coordinates through
`spark.jars.packages` (what a machine with repository access gets). A session that already
exists (spark-submit, Databricks) is used as it is: `require_tfrecord_source` then says, in one
line, how to provide the data source if it does not load. spark-tfrecord is built for Spark 3.5
and Scala 2.12 only: on Spark 4 (Scala 2.13) `require_tfrecord_spark` refuses in one line.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from dataset.errors import SparkSetupError

TFRECORD_JAR_ENV = "SPARK_TFRECORD_JAR"
TFRECORD_JAR_NAME = "spark-tfrecord_2.12-0.7.0.jar"
TFRECORD_PACKAGE = "com.linkedin.sparktfrecord:spark-tfrecord_2.12:0.7.0"
TFRECORD_SPARK = "3.5"
HOW_TO_PROVIDE = (
    f"set {TFRECORD_JAR_ENV}=/path/to/{TFRECORD_JAR_NAME}, or pass --packages {TFRECORD_PACKAGE}, "
    f"or on Databricks install the Maven library {TFRECORD_PACKAGE} (Spark 3.5 / Scala 2.12)"
)


def require_tfrecord_spark(version: str, what: str) -> None:
    """Refuse a Spark other than 3.5, where spark-tfrecord 0.7.0 (Scala 2.12) does not load.

    Args:
        version: `spark.version` (or `pyspark.__version__` before a session exists).
        what: the subject of the message, plural: "tables", "jobs that read tfrecord".

    Raises:
        SparkSetupError: `version` is not 3.5.x.
    """
    if version.split(".")[:2] != TFRECORD_SPARK.split("."):
        raise SparkSetupError(
            f"{what} need Spark {TFRECORD_SPARK} with spark-tfrecord ({TFRECORD_PACKAGE}, Scala 2.12), "
            f"and this is Spark {version}: run this job on Spark {TFRECORD_SPARK}; image folders convert "
            "on Spark 3.5 and 4.x"
        )


def _join(*items: str | None) -> str:
    return ",".join(part.strip() for item in items if item for part in item.split(",") if part.strip())


def _local_path(jar: str) -> str | None:
    """The local file a jar setting names, or None for a remote URL (hdfs://, s3a://, https://...)."""
    parsed = urlparse(jar)
    if parsed.scheme in ("", "file", "local"):
        return parsed.path if parsed.scheme else jar
    if len(parsed.scheme) == 1:  # a Windows drive letter
        return jar
    return None


def tfrecord_jar_conf(
    jars: str | None = None, packages: str | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """`spark.jars` / `spark.jars.packages` entries that load spark-tfrecord, with `jars`/`packages` kept.

    Raises:
        SparkSetupError: `SPARK_TFRECORD_JAR` names a local file that does not exist (checked
            before Spark starts).
    """
    environ = os.environ if environ is None else environ
    jar = environ.get(TFRECORD_JAR_ENV, "").strip()
    conf: dict[str, str] = {}
    if jar:
        path = _local_path(jar)
        if path is not None and not os.path.isfile(path):
            raise SparkSetupError(
                f"{TFRECORD_JAR_ENV}={jar} does not exist; point it at {TFRECORD_JAR_NAME} "
                f"(Spark 3.5 / Scala 2.12), or unset it to get {TFRECORD_PACKAGE} from Maven"
            )
        conf["spark.jars"] = _join(jars, jar)
        if packages:
            conf["spark.jars.packages"] = _join(packages)
        return conf
    if jars:
        conf["spark.jars"] = _join(jars)
    given = _join(jars, packages)
    if "spark-tfrecord" in given:  # the user brought it themselves
        if packages:
            conf["spark.jars.packages"] = _join(packages)
    else:
        conf["spark.jars.packages"] = _join(packages, TFRECORD_PACKAGE)
    return conf


def require_tfrecord_source(spark: Any) -> None:
    """Check that `spark.read.format("tfrecord")` resolves in this session.

    Raises:
        SparkSetupError: it does not; the message says how to provide it.
    """
    jvm = getattr(spark, "_jvm", None)
    if jvm is None:  # Spark Connect: no JVM here; the first read reports a missing source itself
        return
    from py4j.protocol import Py4JJavaError

    try:
        jvm.org.apache.spark.sql.execution.datasources.DataSource.lookupDataSource(
            "tfrecord", spark._jsparkSession.sessionState().conf()
        )
    except Py4JJavaError as err:
        raise SparkSetupError(f"Spark has no 'tfrecord' data source: {HOW_TO_PROVIDE}") from err
