# Databricks notebook source
# MAGIC %md
# MAGIC # Convert an image folder or a table into a TFRecord dataset
# MAGIC Calls `conversion.images.convert.convert_images` (kind `images`) or `conversion.tables.convert.convert_table`
# MAGIC (kind `table`: CSV/Parquet/JSON/ORC files, with Spark reader options as a JSON object, e.g.
# MAGIC `{"sep": "\t", "comment": "#", "encoding": "latin1"}`) on the cluster's Spark session; the logic lives in the
# MAGIC library. Then shows the train split as a DataFrame, read back through spark-tfrecord (the task's Maven library
# MAGIC `com.linkedin.sparktfrecord:spark-tfrecord_2.12:0.7.0`).

# COMMAND ----------

dbutils.widgets.dropdown("kind", "images", ["images", "table"], "What the input holds")
dbutils.widgets.text("input", "/Volumes/main/default/raw/images", "Image root (ROOT/<label>/...) or table files")
dbutils.widgets.text("output", "/Volumes/main/default/datasets/images", "Dataset folder")
dbutils.widgets.text("num_shards", "16", "Shards per split")
dbutils.widgets.dropdown("mode", "overwrite", ["error", "overwrite"], "If the output exists")
dbutils.widgets.text("label", "", "Table: the label column")
dbutils.widgets.dropdown("format", "csv", ["csv", "parquet", "json", "orc"], "Table: file format")
dbutils.widgets.text("read_options", "", 'Table: reader options, JSON, e.g. {"sep": "\\t"}')

# COMMAND ----------

from conversion.images.convert import convert_images
from conversion.images.options import ImageConvertOptions
from conversion.tables.convert import convert_table
from conversion.tables.options import TableConvertOptions, read_options_from_json

if dbutils.widgets.get("kind") == "table":
    options = TableConvertOptions(
        input=dbutils.widgets.get("input"),
        output=dbutils.widgets.get("output"),
        label=dbutils.widgets.get("label"),
        format=dbutils.widgets.get("format"),
        read_options=read_options_from_json(dbutils.widgets.get("read_options")),
        num_shards=int(dbutils.widgets.get("num_shards")),
        mode=dbutils.widgets.get("mode"),
    )
    summary = convert_table(spark, options)
else:
    options = ImageConvertOptions(
        input=dbutils.widgets.get("input"),
        output=dbutils.widgets.get("output"),
        num_shards=int(dbutils.widgets.get("num_shards")),
        mode=dbutils.widgets.get("mode"),
    )
    summary = convert_images(spark, options)
print(summary.text())

# COMMAND ----------

from dataset.spark_read import read_split

display(read_split(spark, options.output, "train"))
