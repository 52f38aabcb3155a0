# Databricks notebook source
# MAGIC %md
# MAGIC # Train with Horovod on the cluster's executors
# MAGIC Calls `training.run.run_training`; checkpoints, metrics.json and the export go to `model_dir`.

# COMMAND ----------

dbutils.widgets.text("data", "/Volumes/main/default/datasets/images", "Dataset folder")
dbutils.widgets.text("model_dir", "/Volumes/main/default/models/images", "Model folder")
dbutils.widgets.text("num_proc", "2", "Horovod processes")
dbutils.widgets.text("epochs", "5", "Epochs")
dbutils.widgets.text("batch_size", "32", "Batch size per process")

# COMMAND ----------

from training.config import TrainConfig
from training.run import run_training

config = TrainConfig(
    data=dbutils.widgets.get("data"),
    model_dir=dbutils.widgets.get("model_dir"),
    epochs=float(dbutils.widgets.get("epochs")),
    batch_size=int(dbutils.widgets.get("batch_size")),
)
result = run_training(spark, config, int(dbutils.widgets.get("num_proc")))
print(result.text())
