# Everything a fresh machine needs is installed by these targets; nothing by hand.
# Requires: python3.11 (or 3.10), Java 17 as `java`, a C++ compiler and cmake (for Horovod).
PYTHON ?= $(shell command -v python3.11 || command -v python3.10 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed

# Horovod has no wheel: it compiles against the TensorFlow installed first (pip caches the wheel).
HOROVOD_ENV := HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 \
	HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MXNET=1

# Spark 3.5 and 4 run on Java 17; use it even where a newer JDK is the default.
JAVA17 := $(firstword $(wildcard /usr/lib/jvm/java-17-openjdk-amd64 /usr/lib/jvm/java-17-openjdk-arm64 /usr/lib/jvm/java-17-openjdk))
ifneq ($(JAVA17),)
export JAVA_HOME ?= $(JAVA17)
endif
export PYSPARK_PYTHON := $(abspath $(PY))
export PYSPARK_DRIVER_PYTHON := $(abspath $(PY))

# The spark-tfrecord jars (format("tfrecord")) for the tests, one per Scala version: the copies next
# to the repo, when they are there and their sha256 matches; else SPARK_TFRECORD_JAR stays unset for
# that run (Spark then gets the jar from Maven). 2.12: Spark 3.5 (`make test`); 2.13: Spark 4 (mk/spark4.mk).
TFRECORD_JARS := $(abspath $(CURDIR)/../shared/jars)
TFRECORD_JAR := $(TFRECORD_JARS)/spark-tfrecord_2.12-0.7.0.jar
TFRECORD_JAR_SHA256 := 18c158ed2e6428e7a7023328fbd6795f7791b1a6eb332658a7eb7b13a655235d
TFRECORD_JAR_OK := $(shell [ -f $(TFRECORD_JAR) ] && sha256sum $(TFRECORD_JAR) | cut -d' ' -f1)
TFRECORD_JAR_2_13 := $(TFRECORD_JARS)/spark-tfrecord_2.13-0.7.0.jar
TFRECORD_JAR_2_13_SHA256 := e86285f2097b5574658c8dddf9fc3675635b73bf885b19ae31055582ee2de422
TFRECORD_JAR_2_13_OK := $(shell [ -f $(TFRECORD_JAR_2_13) ] && sha256sum $(TFRECORD_JAR_2_13) | cut -d' ' -f1)

.PHONY: setup test test-envs test-airflow demo bench clean

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade "pip>=24" wheel "setuptools>=77,<81"
	$(PIP) install -q -r requirements.lock
	$(HOROVOD_ENV) $(PIP) install -q --no-build-isolation horovod==0.28.1
	$(PIP) install -q --no-deps --no-build-isolation -e .
	$(VENV)/bin/horovodrun --check-build
	touch $(STAMP)

include deploy/airflow/airflow.mk
include mk/spark4.mk
include mk/objectstore.mk

ifeq ($(TFRECORD_JAR_OK),$(TFRECORD_JAR_SHA256))
test: export SPARK_TFRECORD_JAR ?= $(TFRECORD_JAR)
endif
# Every environment and jar the tests use, built side by side on a fresh machine (pip's downloads overlap Horovod's
# compile); nothing to do when they are up to date. Each target's output is printed whole when it ends.
test-envs:
	$(MAKE) -j4 --output-sync=target setup objectstore-jars $(AIRFLOW_VENV)/.installed $(SPARK4_VENV)/.installed \
		$(SPARK_CDS)

# The Spark JVMs the tests start (sessions, the jobs' command lines, spark-submit, the smoke runs) each work on a few
# thousand rows and live seconds: they start from a class-data-sharing archive of the classes one small Spark run
# loads (tests/jvm_archive.py, about 45 s to build), and compile with C1 only (C2's compiles cost a 2,000-row table
# job's JVM 19 s of CPU against 3.5 s; that job's whole run 25 s against 17 s with both). The tests' shared session
# keeps full tiered compilation (tests/conftest.py): it runs hundreds of jobs. A JVM of another class path (Spark 4)
# ignores the archive; without it (the build failed) the tests run as before. What the JVMs compute is unchanged.
SPARK_CDS := .cache/spark-classes.jsa
$(SPARK_CDS): $(STAMP) tests/jvm_archive.py
	mkdir -p $(dir $@) && rm -f $@.tmp
	$(if $(filter $(TFRECORD_JAR_SHA256),$(TFRECORD_JAR_OK)),SPARK_TFRECORD_JAR=$(TFRECORD_JAR)) \
		SPARK_SUBMIT_OPTS="-XX:ArchiveClassesAtExit=$(abspath $@).tmp -Xlog:disable" $(PY) -m tests.jvm_archive \
		> $(dir $@)jvm-archive.log 2>&1 && mv $@.tmp $@ || echo "no class archive (see $(dir $@)jvm-archive.log)"
test: export SPARK_SUBMIT_OPTS ?= -XX:TieredStopAtLevel=1 -XX:SharedArchiveFile=$(abspath $(SPARK_CDS)) -Xshare:auto -Xlog:disable

test: test-envs setup objectstore-jars test-airflow test-spark4
	$(VENV)/bin/ruff check dataset conversion training inference demo jobs tests benchmarks deploy
	$(VENV)/bin/pytest -n 2 --dist loadfile --durations=40  # two test files at a time: most of a test's time is process start-up

demo: setup
	$(PY) -m jobs.demo --workdir demo_output

bench: setup
	$(PY) -m benchmarks.convert_images

clean:
	rm -rf $(VENV) $(AIRFLOW_VENV) $(SPARK4_VENV) demo_output $(AIRFLOW_DEMO_DIR) .pytest_cache
	# .cache/jars (the S3A and S3Proxy jars, ~320 MB) stays: `rm -rf .cache` to download them again
