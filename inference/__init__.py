"""Spark batch inference with an exported SavedModel (layout: `dataset.export`)."""
