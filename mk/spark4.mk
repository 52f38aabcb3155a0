# Spark 4 targets, included by the main Makefile (which defines PYTHON and JAVA17).
# The conversion install alone (`pip install .`: no TensorFlow, no Horovod) on the newest Spark 4,
# resolved against mk/spark4.lock as constraints, plus pytest. Spark 4 needs Java 17 or newer.
SPARK4_VENV := .venv-spark4
SPARK4_PY := $(SPARK4_VENV)/bin/python

# The conversion tests that need no TensorFlow (deselected by marker), on Spark 4: images end to end
# (pinned shard bytes, an independent reader), tables and export_parquet through the Scala 2.13
# spark-tfrecord jar (the same pinned bytes and statistics as on Spark 3.5; records read back by
# tests/example_reader.py where the Spark 3.5 run uses TensorFlow), the session start (jar for the
# Scala version, an unresolvable package in one line), validate's errors and the one-line refusals, CSV
# dialects and encodings, dates and timestamps (TensorFlow's parser and serving deselected).
SPARK4_TESTS := tests/test_conversion_only.py tests/test_pinned_bytes.py tests/test_validate.py tests/test_images.py \
	tests/test_plan.py tests/test_plan_columns.py tests/test_options.py tests/test_convert_table.py \
	tests/test_table_hostile.py tests/test_spark_read.py tests/test_spark_start.py tests/test_databricks.py \
	tests/test_csv_dialects.py tests/test_table_types.py tests/test_survey_partials.py tests/test_quantiles.py \
	tests/test_split_rule.py

# The Scala 2.13 jar for this run: SPARK4_TFRECORD_JAR if set (.ci/run sets it), else the copy next to
# the repo when its sha256 matches (the Makefile checks it); never the 2.12 jar that `make test` and
# .ci/run export as SPARK_TFRECORD_JAR. Without one, the tests that need a jar skip and the rest run.
ifeq ($(TFRECORD_JAR_2_13_OK),$(TFRECORD_JAR_2_13_SHA256))
SPARK4_TFRECORD_JAR ?= $(TFRECORD_JAR_2_13)
endif
SPARK4_JAR_ENV := $(if $(SPARK4_TFRECORD_JAR),SPARK_TFRECORD_JAR=$(SPARK4_TFRECORD_JAR),-u SPARK_TFRECORD_JAR)

.PHONY: setup-spark4 test-spark4

setup-spark4: $(SPARK4_VENV)/.installed

$(SPARK4_VENV)/.installed: mk/spark4.lock pyproject.toml
	rm -rf $(SPARK4_VENV) && $(PYTHON) -m venv $(SPARK4_VENV)
	$(SPARK4_VENV)/bin/pip install -q --upgrade "pip>=24"
	$(SPARK4_VENV)/bin/pip install -q -c mk/spark4.lock . pytest pytest-timeout
	touch $@

# The worktree's code, not the copy `pip install .` made, runs on the driver and in the Python workers.
test-spark4: $(SPARK4_VENV)/.installed
	env $(SPARK4_JAR_ENV) PYTHONPATH=$(CURDIR) PYSPARK_PYTHON=$(abspath $(SPARK4_PY)) \
		PYSPARK_DRIVER_PYTHON=$(abspath $(SPARK4_PY)) \
		$(SPARK4_PY) -m pytest -p no:cacheprovider -m "not needs_tf and not needs_spark35" $(SPARK4_TESTS)
