"""Horovod-on-Spark Estimator training over the TFRecord datasets (coming next)."""
