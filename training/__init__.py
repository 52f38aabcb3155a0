"""Horovod-on-Spark `tf.estimator` training over dataset folders (see `dataset` for the contract).

Generic parts: `config` (the run's options), `input` (the tf.data pipeline), `heads` (heads and
the Horovod optimizer), `rank` (what every Horovod process runs), `run` (the Spark driver),
`export` (SavedModel with the dataset's manifest). Each kind of data is a sub-package
(`images`, `tables`) registered as one `Kind` in `kinds`.
"""
