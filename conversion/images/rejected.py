"""The one exception of the image checks: a file that cannot become a record, and why."""

from __future__ import annotations


class Rejected(Exception):
    """An input file that cannot become a record; `reason` is a short fixed word."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
