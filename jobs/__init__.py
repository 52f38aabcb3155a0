"""Thin spark-submit entry points: parse arguments, build or take the SparkSession, call one library function."""
