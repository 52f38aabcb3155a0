# Databricks notebook source
# MAGIC %md
# MAGIC # Convert an image folder into a TFRecord dataset
# MAGIC Calls `conversion.images.convert.convert_images` on the cluster's Spark session; the logic lives in the library.
# MAGIC Then shows the train split as a DataFrame, read back through spark-tfrecord (the task's Maven library for the
# MAGIC cluster's Scala version: `com.linkedin.sparktfrecord:spark-tfrecord_2.12:0.7.0` on 14.3 LTS, `_2.13` on 17.3 LTS).

# COMMAND ----------

dbutils.widgets.text("input", "/Volumes/main/default/raw/images", "Image root (ROOT/<label>/...)")
dbutils.widgets.text("output", "/Volumes/main/default/datasets/images", "Dataset folder")
dbutils.widgets.text("num_shards", "16", "Shards per split")
dbutils.widgets.dropdown("mode", "overwrite", ["error", "overwrite"], "If the output exists")

# COMMAND ----------

from conversion.images.convert import convert_images
from conversion.images.options import ImageConvertOptions

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
