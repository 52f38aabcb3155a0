# Databricks notebook source
# MAGIC %md
# MAGIC # Batch prediction with the exported SavedModel
# MAGIC Calls `inference.predict.predict_split`; writes Parquet and prints accuracy when labels are known.

# COMMAND ----------

dbutils.widgets.text("model", "", "SavedModel export folder (empty: the newest under model_dir/export)")
dbutils.widgets.text("model_dir", "/Volumes/main/default/models/images", "Model folder")
dbutils.widgets.text("data", "/Volumes/main/default/datasets/images", "Dataset folder")
dbutils.widgets.text("split", "test", "Split")
dbutils.widgets.text("output", "/Volumes/main/default/predictions/images", "Parquet output")

# COMMAND ----------

from dataset.export import resolve_export
from inference.predict import accuracy, predict_split

model = resolve_export(dbutils.widgets.get("model") or dbutils.widgets.get("model_dir"))
predictions = predict_split(spark, model, dbutils.widgets.get("data"), dbutils.widgets.get("split"))
predictions.write.mode("overwrite").parquet(dbutils.widgets.get("output"))
print(f"predictions: {dbutils.widgets.get('output')}; accuracy {accuracy(spark.read.parquet(dbutils.widgets.get('output')))}")
