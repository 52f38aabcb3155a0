"""One error hierarchy for every library and job.

Every error a user can cause derives from `PipelineError`; its message says what was wrong
and what to do. Jobs print it as one line, `error: <message>`, and exit with `EXIT_USER_ERROR`.
"""

from __future__ import annotations

EXIT_USER_ERROR = 2  # every job, for every PipelineError (argparse uses 2 for bad usage too)


class PipelineError(Exception):
    """Base of every error caused by input, options, data or environment (not by a bug)."""


class OptionError(PipelineError, ValueError):
    """An option value is invalid."""


class StorageError(PipelineError):
    """A URL cannot be opened or listed (missing path, unknown scheme, missing fsspec plugin)."""


class SparkSetupError(PipelineError):
    """Spark lacks what a job needs: a jar that is missing, a data source that does not load."""


class DatasetError(PipelineError):
    """A dataset folder is missing, incomplete or corrupt, or lacks what is asked of it."""


class ConversionError(PipelineError):
    """A conversion cannot start or cannot finish (bad input, unusable columns...)."""


class RejectLimitExceeded(ConversionError):
    """More inputs were rejected than `--max-reject-fraction` allows."""


class TrainingError(PipelineError):
    """Training cannot start or did not finish."""


class InferenceError(PipelineError):
    """Prediction cannot run (no export, an export that does not fit the input)."""
