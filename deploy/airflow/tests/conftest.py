"""Airflow runs in its own virtualenv (its constraints clash with TF 2.15 and Horovod); set it up quietly."""

import os
import tempfile

HOME = tempfile.mkdtemp(prefix="airflow-home-")
os.environ.setdefault("AIRFLOW_HOME", HOME)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", os.path.join(os.path.dirname(__file__), "..", "dags"))
os.environ.setdefault("AIRFLOW_CONN_SPARK_DEFAULT", '{"conn_type": "spark", "host": "spark://spark-master", "port": 7077}')
os.environ.setdefault("AIRFLOW_CONN_DATABRICKS_DEFAULT", "databricks://@example.cloud.databricks.com?token=x")
os.environ.setdefault("TFRECORDPIPE_HOME", "/opt/tfrecordpipe")
# The production defaults (the --py-files zip, 2 retries) are what these tests check.
for name in ("TFRECORDPIPE_PY_FILES", "TFRECORDPIPE_RETRIES"):
    os.environ.pop(name, None)
