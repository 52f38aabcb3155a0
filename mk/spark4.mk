# Spark 4 targets, included by the main Makefile (which defines PYTHON and JAVA17).
# The conversion install alone (`pip install .`: no TensorFlow, no Horovod) on the newest Spark 4,
# resolved against mk/spark4.lock as constraints, plus pytest. Spark 4 needs Java 17 or newer.
SPARK4_VENV := .venv-spark4
SPARK4_PY := $(SPARK4_VENV)/bin/python

# The conversion tests that need neither TensorFlow nor spark-tfrecord (deselected by marker), on
# Spark 4: images end to end (pinned shard bytes, an independent reader), validate's errors, and the
# one-line refusals (tables and tfrecord reads need Spark 3.5; validate needs TensorFlow).
SPARK4_TESTS := tests/test_conversion_only.py tests/test_pinned_bytes.py tests/test_validate.py tests/test_images.py \
	tests/test_plan.py tests/test_plan_columns.py tests/test_options.py

.PHONY: setup-spark4 test-spark4

setup-spark4: $(SPARK4_VENV)/.installed

$(SPARK4_VENV)/.installed: mk/spark4.lock pyproject.toml
	rm -rf $(SPARK4_VENV) && $(PYTHON) -m venv $(SPARK4_VENV)
	$(SPARK4_VENV)/bin/pip install -q --upgrade "pip>=24"
	$(SPARK4_VENV)/bin/pip install -q -c mk/spark4.lock . pytest pytest-timeout
	touch $@

# The worktree's code, not the copy `pip install .` made, runs on the driver and in the Python workers.
test-spark4: $(SPARK4_VENV)/.installed
	env -u SPARK_TFRECORD_JAR PYTHONPATH=$(CURDIR) PYSPARK_PYTHON=$(abspath $(SPARK4_PY)) \
		PYSPARK_DRIVER_PYTHON=$(abspath $(SPARK4_PY)) \
		$(SPARK4_PY) -m pytest -p no:cacheprovider -m "not needs_tf and not needs_spark35" $(SPARK4_TESTS)
