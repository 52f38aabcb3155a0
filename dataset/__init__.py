"""The dataset contract: what conversion writes and training, inference and Spark readers read.

A dataset folder holds `<split>-NNNNN-of-MMMMM.tfrecord[.gz]` shards, `manifest.json`,
`_rejected/` and `_SUCCESS`. This package owns that layout, the typed manifest (which renders
the `tf.io` parse spec and the Spark schema from one object), the feature keys, storage
access, the dataset check and the one error hierarchy. It imports neither `conversion` nor
`training`, and no TensorFlow at import time.
"""
