# Databricks notebook source
# MAGIC %md
# MAGIC # Convert an image folder into a TFRecord dataset
# MAGIC Calls `conversion.images.convert.convert_images` on the cluster's Spark session; the logic lives in the library.
# MAGIC Then shows the train split as a DataFrame, read back through spark-tfrecord (the task's Maven library for the
# MAGIC cluster's Scala version: `com.linkedin.sparktfrecord:spark-tfrecord_2.12:0.7.0` on 14.3 LTS, `_2.13` on 17.3 LTS).
# MAGIC `mode`: `append` converts only the files new since the dataset's current version, as a new version (on a
# MAGIC missing folder: a full conversion, version 1); `overwrite` a full conversion as a new version; `error` refuses an
# MAGIC existing folder. For appends only: `list_prefix` lists one folder under `input` (e.g. `cats/2026-12-06`; empty:
# MAGIC the whole root), `on_change` keeps or replaces the records of changed and deleted files, `retry_rejected`
# MAGIC converts again what earlier versions rejected.

# COMMAND ----------

dbutils.widgets.text("input", "/Volumes/main/default/raw/images", "Image root (ROOT/<label>/...)")
dbutils.widgets.text("output", "/Volumes/main/default/datasets/images", "Dataset folder")
dbutils.widgets.text("num_shards", "16", "Shards per split")
dbutils.widgets.dropdown("mode", "overwrite", ["error", "overwrite", "append"], "If the output exists")
dbutils.widgets.text("list_prefix", "", "Append: list only this folder under input (empty: all)")
dbutils.widgets.dropdown("on_change", "keep", ["keep", "replace"], "Append: changed or deleted files")
dbutils.widgets.dropdown("retry_rejected", "false", ["false", "true"], "Append: convert earlier rejects again")

# COMMAND ----------

from conversion.images.convert import convert_images
from conversion.images.options import ImageConvertOptions

options = ImageConvertOptions(
    input=dbutils.widgets.get("input"),
    output=dbutils.widgets.get("output"),
    num_shards=int(dbutils.widgets.get("num_shards")),
    mode=dbutils.widgets.get("mode"),
    list_prefix=dbutils.widgets.get("list_prefix") or None,
    on_change=dbutils.widgets.get("on_change"),
    retry_rejected=dbutils.widgets.get("retry_rejected") == "true",
)
summary = convert_images(spark, options)
print(summary.text())

# COMMAND ----------

from dataset.spark_read import read_split

display(read_split(spark, options.output, "train"))
