"""The one way every job configures Spark from its command line.

Under spark-submit or in a Databricks notebook the session that exists is used as it is;
run with plain `python`, a local Spark (`local[*]`) is started. Jobs that read or write
`format("tfrecord")` ask for it (`tfrecord=True`): the jar for the Spark's Scala version comes from
`SPARK_TFRECORD_JAR` or Maven (see `jobs.tfrecord_jar`), and the data source is checked once the
session is there. A local start that resolves Maven packages keeps the JVM's console output until
the JVM is up (`jobs.spark_start`): a package Maven does not serve is one line, not a stack trace.
"""

from __future__ import annotations

import argparse
import os
import sys

import pyspark
from pyspark.sql import SparkSession

from dataset.errors import SparkSetupError
from dataset.object_store import configure_running_spark, s3a_session_conf, uses_object_store
from jobs.spark_start import UnresolvedPackages, start_quietly
from jobs.tfrecord_jar import (
    how_to_provide,
    installed_scala,
    require_tfrecord_source,
    require_tfrecord_spark,
    scala_of_spark_version,
    tfrecord_jar_conf,
)

TFRECORD_JOBS = "jobs that read or write format('tfrecord')"

DEFAULT_CONF = {
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.ui.showConsoleProgress": "false",
}


LOCAL_JAVA_OPTIONS = "-XX:TieredStopAtLevel=1"


def add_spark_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Spark (ignored when a session already exists)")
    group.add_argument("--master", help="Spark master URL; default: the spark-submit session, else local[*]")
    group.add_argument(
        "--conf", action="append", default=[], metavar="KEY=VALUE", help="a Spark conf entry (repeatable)"
    )
    group.add_argument("--jars", help="comma-separated jar paths or URLs to add to the session")
    group.add_argument("--packages", help="comma-separated Maven coordinates to add to the session")


def spark_session(args: argparse.Namespace, app_name: str, tfrecord: bool = False) -> SparkSession:
    """The active session, or a new one configured from `args`; with `tfrecord`, one that reads tfrecord.

    Raises:
        SparkSetupError: (`tfrecord`) Spark is neither 3.5 nor 4.x, or `SPARK_TFRECORD_JAR` names a
            missing file or a jar for another Scala version (all before a new Spark starts), or the
            session has no tfrecord data source; a `--packages` entry Maven does not serve.
    """
    on_store = uses_object_store(vars(args).values())  # an s3:// or s3a:// --input, --output, --data, --model...
    active = SparkSession.getActiveSession()
    if active is not None:
        if on_store:
            configure_running_spark(active)  # S3A needs its jars in the session already (spark-submit --jars)
        if tfrecord:
            require_tfrecord_spark(active.version, TFRECORD_JOBS)
            require_tfrecord_source(active)
        return active
    jar_conf, scala = {}, ""
    if tfrecord:  # the pyspark that starts the JVM (or that spark-submit ships) is the Spark version
        require_tfrecord_spark(pyspark.__version__, TFRECORD_JOBS)
        scala = installed_scala() or scala_of_spark_version(pyspark.__version__)
        jar_conf = tfrecord_jar_conf(args.jars, args.packages, scala, pyspark.__version__)
    builder = SparkSession.builder.appName(app_name)
    under_submit = "PYSPARK_GATEWAY_PORT" in os.environ  # spark-submit hands Python its JVM gateway
    master = args.master or (None if under_submit else "local[*]")
    if master:
        builder = builder.master(master)
    if not under_submit:
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # local workers run this same environment
    conf = dict(DEFAULT_CONF)
    for item in args.conf:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"error: --conf {item!r} is not KEY=VALUE")
        conf[key.strip()] = value
    if master and master.startswith("local") and not under_submit and not tfrecord:
        # A local run whose rows go through Python workers shares the cores with them: C1-only JIT cut the
        # JVM's CPU in a first 50k-file image conversion from 3.5 s to 1.4 s on 2 cores. Jobs that read or
        # write tfrecord do their row work in the JVM and keep full tiered JIT (C2): a 2,000,000-row table
        # conversion used 124 s of JVM CPU with C1 only and 86 s with C2.
        conf.setdefault("spark.driver.extraJavaOptions", LOCAL_JAVA_OPTIONS)
    if args.jars:
        conf["spark.jars"] = args.jars
    if args.packages:
        conf["spark.jars.packages"] = args.packages
    conf.update(jar_conf)
    if on_store:  # the AWS variables, translated for S3A and passed on to the executors (see dataset.object_store)
        conf.update(s3a_session_conf(conf))
    for key, value in conf.items():
        builder = builder.config(key, value)
    if "spark.jars.packages" in conf and not under_submit:  # Ivy resolves them as the JVM starts
        try:
            session = start_quietly({"spark.app.name": app_name, "spark.master": master, **conf})
        except UnresolvedPackages as err:
            advice = how_to_provide(scala) if "spark-tfrecord" in str(err) else "check --packages and the repositories"
            raise SparkSetupError(f"Spark did not start: no repository served {err}: {advice}") from err
        except Exception as err:  # any other failure: spark-submit's output is on the console already
            if not tfrecord:
                raise
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise SparkSetupError(
                f"Spark did not start with --packages {conf['spark.jars.packages']} ({first}): {how_to_provide(scala)}"
            ) from err
    else:
        session = builder.getOrCreate()
    if tfrecord:
        require_tfrecord_source(session)
    return session
