"""Spark jobs that turn raw files into sharded TFRecord datasets with a manifest."""
