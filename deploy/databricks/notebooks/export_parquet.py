# Databricks notebook source
# MAGIC %md
# MAGIC # Export a dataset's records to Parquet
# MAGIC Calls `jobs.export_parquet.export_parquet` on the cluster's Spark session: the records are read through
# MAGIC spark-tfrecord (the task's Maven library for the cluster's Scala version) with the manifest's schema.

# COMMAND ----------

dbutils.widgets.text("data", "/Volumes/main/default/datasets/table", "Dataset folder")
dbutils.widgets.text("split", "", "Split (empty: every split, partitioned by split)")
dbutils.widgets.text("output", "/Volumes/main/default/exports/table", "Parquet folder")
dbutils.widgets.dropdown("mode", "overwrite", ["error", "overwrite"], "If the output exists")

# COMMAND ----------

from jobs.export_parquet import export_parquet

split = dbutils.widgets.get("split") or None
count = export_parquet(
    spark, dbutils.widgets.get("data"), dbutils.widgets.get("output"), split, dbutils.widgets.get("mode")
)
print(f"wrote {count} records of {split or 'every split'} to {dbutils.widgets.get('output')}")
