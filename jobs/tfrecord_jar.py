"""Where Spark gets the spark-tfrecord data source (`format("tfrecord")`) from, for its Scala version.

spark-tfrecord 0.7.0 is built once per Scala version: `_2.12` for Spark 3.5, `_2.13` for Spark 4
(and for Spark 3.5's Scala 2.13 builds). The running Spark's Scala version picks the build: read
from the Spark install's `scala-library-2.1x.y.jar` before the JVM starts, from the JVM once a
session exists, else from the Spark version's major. One setting, `SPARK_TFRECORD_JAR`: a local
path or URL of the jar for that Scala version, added to `spark.jars` (after any `--jars`); a jar
for the other Scala version is refused in one line before Spark starts. Unset, the jar comes from
Maven by its coordinates through `spark.jars.packages`. A session that already exists
(spark-submit, Databricks) is used as it is: `require_tfrecord_source` then says, in one line,
how to provide the data source if it does not load.
"""

from __future__ import annotations

import glob
import os
import re
import zipfile
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from dataset.errors import SparkSetupError

TFRECORD_JAR_ENV = "SPARK_TFRECORD_JAR"
TFRECORD_VERSION = "0.7.0"
_SCALA_IN_NAME = re.compile(r"spark-tfrecord_(2\.1\d)")
_SCALA_LIBRARY = re.compile(r"scala-library-(2\.1\d)\.\d+\.jar$")


def tfrecord_package(scala: str) -> str:
    """The Maven coordinates of spark-tfrecord for Scala `scala` ("2.12" or "2.13")."""
    return f"com.linkedin.sparktfrecord:spark-tfrecord_{scala}:{TFRECORD_VERSION}"


def tfrecord_jar_name(scala: str) -> str:
    return f"spark-tfrecord_{scala}-{TFRECORD_VERSION}.jar"


def scala_of_spark_version(version: str) -> str:
    """The Scala version a Spark release is built with by default: 2.12 for 3.x, 2.13 from 4.0."""
    return "2.12" if version.split(".")[0] == "3" else "2.13"


def installed_scala(spark_home: str | None = None) -> str | None:
    """The Scala version of the Spark install that `pyspark` launches, from its `jars/scala-library-*.jar`.

    Args:
        spark_home: the install; default `SPARK_HOME`, else the pyspark package (a pip install).
    """
    if spark_home is None:
        spark_home = os.environ.get("SPARK_HOME")
    if not spark_home:
        import pyspark

        spark_home = os.path.dirname(pyspark.__file__)
    for path in sorted(glob.glob(os.path.join(spark_home, "jars", "scala-library-*.jar"))):
        found = _SCALA_LIBRARY.search(os.path.basename(path))
        if found:
            return found.group(1)
    return None


def session_scala(spark: Any) -> str:
    """The Scala version of a running session: its JVM's, or (Spark Connect: no JVM here) its version's."""
    jvm = getattr(spark, "_jvm", None)
    if jvm is not None:
        return ".".join(str(jvm.scala.util.Properties.versionNumberString()).split(".")[:2])
    return scala_of_spark_version(spark.version)


def how_to_provide(scala: str) -> str:
    """How to give Spark (Scala `scala`) the data source, in one clause."""
    package = tfrecord_package(scala)
    return (
        f"set {TFRECORD_JAR_ENV}=/path/to/{tfrecord_jar_name(scala)}, or pass --packages {package}, "
        f"or on Databricks install the Maven library {package} (Scala {scala})"
    )


def require_tfrecord_spark(version: str, what: str) -> None:
    """Refuse a Spark for which spark-tfrecord 0.7.0 has no build: anything but 3.5.x and 4.x.

    Args:
        version: `spark.version` (or `pyspark.__version__` before a session exists).
        what: the subject of the message, plural: "tables", "jobs that read tfrecord".

    Raises:
        SparkSetupError: `version` is neither 3.5.x nor 4.x.
    """
    parts = version.split(".")
    if parts[0] != "4" and parts[:2] != ["3", "5"]:
        raise SparkSetupError(
            f"{what} need Spark 3.5 or 4.x (spark-tfrecord {TFRECORD_VERSION} is built for those), "
            f"and this is Spark {version}: run this job on Spark 3.5 or 4.x"
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


def jar_scala(jar: str) -> str | None:
    """The Scala version a spark-tfrecord jar or coordinate is built for: from its name, else (a local
    file) from the Maven artifact id it carries inside; None when neither says."""
    found = _SCALA_IN_NAME.search(os.path.basename(urlparse(jar).path) or jar)
    if found:
        return found.group(1)
    path = _local_path(jar)
    if path is None or not zipfile.is_zipfile(path):
        return None
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            found = re.fullmatch(
                r"META-INF/maven/com\.linkedin\.sparktfrecord/spark-tfrecord_(2\.1\d)/pom\.properties", name
            )
            if found:
                return found.group(1)
    return None


def _check_scala(jar: str, scala: str, spark_version: str, given_as: str) -> None:
    """Refuse a spark-tfrecord jar or coordinate built for another Scala version than `scala`."""
    built_for = jar_scala(jar)
    if built_for is not None and built_for != scala:
        # a jar is named by its file name alone: a URL's user info or query never shows
        shown = jar if given_as == "--packages" else os.path.basename(urlparse(jar).path)
        raise SparkSetupError(
            f"{given_as} gives {shown}, spark-tfrecord for Scala {built_for}, and this Spark {spark_version} "
            f"runs Scala {scala}: {how_to_provide(scala)}"
        )


def tfrecord_jar_conf(
    jars: str | None,
    packages: str | None,
    scala: str,
    spark_version: str,
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """`spark.jars` / `spark.jars.packages` entries that load spark-tfrecord for Scala `scala`,
    with `jars`/`packages` kept.

    Raises:
        SparkSetupError: `SPARK_TFRECORD_JAR` names a local file that does not exist, or it (or a
            spark-tfrecord in `jars`/`packages`) is built for another Scala version; checked before
            Spark starts.
    """
    environ = os.environ if environ is None else environ
    jar = environ.get(TFRECORD_JAR_ENV, "").strip()
    for given_as, entries in (("--jars", jars), ("--packages", packages)):
        for entry in _join(entries).split(","):
            if "spark-tfrecord" in entry:
                _check_scala(entry, scala, spark_version, given_as)
    conf: dict[str, str] = {}
    if jar:
        path = _local_path(jar)
        if path is not None and not os.path.isfile(path):
            raise SparkSetupError(
                f"{TFRECORD_JAR_ENV}={jar} does not exist; point it at {tfrecord_jar_name(scala)} "
                f"(Scala {scala}), or unset it to get {tfrecord_package(scala)} from Maven"
            )
        _check_scala(jar, scala, spark_version, TFRECORD_JAR_ENV)
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
        conf["spark.jars.packages"] = _join(packages, tfrecord_package(scala))
    return conf


def require_tfrecord_source(spark: Any) -> None:
    """Check that `spark.read.format("tfrecord")` resolves in this session.

    Raises:
        SparkSetupError: it does not; the message says how to provide it for the session's Scala.
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
        raise SparkSetupError(f"Spark has no 'tfrecord' data source: {how_to_provide(session_scala(spark))}") from err
