# Databricks notebook source
# MAGIC %md
# MAGIC # Convert a table into a TFRecord dataset
# MAGIC Calls `conversion.tables.convert.convert_table` on the cluster's Spark session; the logic lives in the library.
# MAGIC `read_options`: Spark reader options as a JSON object, e.g. `{"sep": "\t", "comment": "#", "encoding": "latin1"}`.
# MAGIC The records are written by spark-tfrecord: the task's Maven library for the cluster's Scala version
# MAGIC (`spark-tfrecord_2.12` on 14.3 LTS, `spark-tfrecord_2.13` on 17.3 LTS).
# MAGIC `mode`: `append` converts only the files of an `input` folder that are new since the dataset's current version,
# MAGIC as a new version (file sources only); `overwrite` a full conversion as a new version; `error` refuses an
# MAGIC existing folder.

# COMMAND ----------

dbutils.widgets.text("input", "/Volumes/main/default/raw/table.csv", "Table file or folder (empty: use table)")
dbutils.widgets.dropdown("format", "csv", ["csv", "parquet", "json", "orc"], "Format of input")
dbutils.widgets.text("read_options", "", 'Spark reader options, a JSON object, e.g. {"sep": "\\t", "comment": "#"}')
dbutils.widgets.text("table", "", "Catalog table (instead of input)")
dbutils.widgets.text("label", "label", "Label column")
dbutils.widgets.text("key", "", "Key column (empty: none)")
dbutils.widgets.text("output", "/Volumes/main/default/datasets/table", "Dataset folder")
dbutils.widgets.text("num_shards", "16", "Shards per split")
dbutils.widgets.dropdown("mode", "overwrite", ["error", "overwrite", "append"], "If the output exists")

# COMMAND ----------

from conversion.tables.convert import convert_table
from conversion.tables.options import TableConvertOptions, read_options_from_json

options = TableConvertOptions(
    input=dbutils.widgets.get("input") or None,
    format=dbutils.widgets.get("format"),
    read_options=read_options_from_json(dbutils.widgets.get("read_options")),
    table=dbutils.widgets.get("table") or None,
    label=dbutils.widgets.get("label"),
    key=dbutils.widgets.get("key") or None,
    output=dbutils.widgets.get("output"),
    num_shards=int(dbutils.widgets.get("num_shards")),
    mode=dbutils.widgets.get("mode"),
)
summary = convert_table(spark, options)
print(summary.text())
