"""Exception types of the conversion library.

Each message says what was wrong and what to do; jobs print it as one line and exit non-zero.
"""


class ConversionError(Exception):
    """A conversion cannot start or cannot finish (bad input, bad options, too many rejects)."""


class OptionError(ConversionError, ValueError):
    """An option value is invalid."""


class DatasetError(Exception):
    """A dataset folder is missing, incomplete or corrupt."""
