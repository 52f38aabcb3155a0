"""The one exit rule of every job: a user's mistake is one line on stderr and exit code 2."""

from __future__ import annotations

import sys
from collections.abc import Callable

from dataset.errors import EXIT_USER_ERROR, PipelineError


def reporting_errors(body: Callable[[], int]) -> int:
    """Run a job's body; a `PipelineError` becomes `error: <message>` and `EXIT_USER_ERROR`."""
    try:
        return body()
    except PipelineError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
