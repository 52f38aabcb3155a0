"""Build the class-data-sharing archive `make test` gives every Spark JVM the tests start (`SPARK_SUBMIT_OPTS`).

    SPARK_SUBMIT_OPTS="-XX:ArchiveClassesAtExit=ARCHIVE -Xlog:disable" python -m tests.jvm_archive

A Spark driver JVM spends its first seconds loading and verifying thousands of classes from pyspark's jars; a
dynamic CDS archive (JDK 13+) of the classes one small run loaded maps them in ready-made. The tests start well
over a hundred such JVMs (the jobs' command lines, spark-submit, the benchmarks' smoke runs): with the archive,
four benchmark smoke runs took 103 and 122 s against 126 s. What the JVMs compute is unchanged; a JVM whose class
path or JDK differs from this run's (the Spark-4 environment) ignores the archive (`-Xshare:auto`, logging off).

The run converts a small table and a few images with the library, reads the records back and runs a Python task,
then waits for its JVM to exit, which writes the archive.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path


def main() -> int:
    import pandas as pd
    from pyspark.sql import SparkSession

    from conversion.images.convert import convert_images
    from conversion.images.options import ImageConvertOptions
    from conversion.tables.convert import convert_table
    from conversion.tables.options import TableConvertOptions
    from demo.data import generate_tree

    with tempfile.TemporaryDirectory(prefix="jvm-archive-") as tmp:
        work = Path(tmp)
        builder = (
            SparkSession.builder.master("local[2]")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.warehouse.dir", str(work / "warehouse"))
        )
        if os.environ.get("SPARK_TFRECORD_JAR"):
            builder = builder.config("spark.jars", os.environ["SPARK_TFRECORD_JAR"])
        spark = builder.getOrCreate()
        spark.sparkContext.setLogLevel("ERROR")
        frame = pd.DataFrame({"x": [i * 0.5 for i in range(200)], "s": [str(i % 7) for i in range(200)]})
        frame["label"] = [i % 3 for i in range(200)]
        frame.to_parquet(work / "table.parquet")
        frame.to_csv(work / "table.csv", index=False)
        for fmt, name in (("parquet", "table.parquet"), ("csv", "table.csv")):
            if not os.environ.get("SPARK_TFRECORD_JAR"):  # no tfrecord data source: the reads alone
                spark.read.option("header", "true").format(fmt).load(str(work / name)).groupBy("s").count().collect()
                continue
            out = work / f"out-{fmt}"
            convert_table(
                spark, TableConvertOptions(output=str(out), label="label", input=str(work / name), format=fmt)
            )
            spark.read.format("tfrecord").load(str(out / "run-*" / "train-*.tfrecord")).count()
        generate_tree(work / "images", per_label=5)
        convert_images(spark, ImageConvertOptions(str(work / "images"), str(work / "images-out"), num_shards=1))
        spark.sparkContext.parallelize(range(10), 2).map(lambda v: v * 2).sum()
        gateway = spark.sparkContext._gateway  # noqa: SLF001 (the JVM process pyspark started)
        spark.stop()
        gateway.proc.stdin.close()  # the JVM exits on EOF and writes the archive on its way out
        gateway.proc.wait(timeout=300)
    return 0


if __name__ == "__main__":
    sys.exit(main())
