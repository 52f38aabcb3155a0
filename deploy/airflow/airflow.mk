# Airflow targets, included by the main Makefile (which defines PYTHON, VENV, PY and STAMP).
# Airflow has its own environment: its pins (wrapt, pyarrow, protobuf) clash with TF 2.15 and Horovod.
AIRFLOW_VENV := .venv-airflow
AIRFLOW_DEMO_DIR := airflow_demo_output

.PHONY: test-airflow airflow-demo

$(AIRFLOW_VENV)/.installed: deploy/airflow/requirements.lock
	$(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/pip install -q --upgrade "pip>=24"
	$(AIRFLOW_VENV)/bin/pip install -q -r deploy/airflow/requirements.lock
	touch $@

# The slow tests run the Spark DAG for real, with spark-submit and Python from the project's $(VENV).
test-airflow: $(AIRFLOW_VENV)/.installed $(STAMP)
	$(AIRFLOW_VENV)/bin/pytest -p no:cacheprovider deploy/airflow/tests

# Runs tfrecordpipe_spark for two data intervals with `airflow dags test` on local[2] Spark over the digits
# images: interval 1 converts 1,500 in full and trains; interval 2 appends the 297 that arrived, trains on, predicts.
airflow-demo: $(AIRFLOW_VENV)/.installed $(STAMP)
	$(AIRFLOW_VENV)/bin/python deploy/airflow/demo.py --workdir $(AIRFLOW_DEMO_DIR) --project-python $(abspath $(PY))
