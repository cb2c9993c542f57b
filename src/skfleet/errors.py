"""Errors and warnings that skfleet raises for the user to read.

Every error a user can cause (a bad flag, a missing column, a table that already exists) is a
:class:`SkfleetError`: its message is one line that names the thing at fault, and the CLI prints it
and exits with status 2. Anything else is a bug and keeps its traceback.

>>> err = MissingColumnError("column 'dep_delay' is missing from flights.parquet")
>>> isinstance(err, SkfleetError), str(err)
(True, "column 'dep_delay' is missing from flights.parquet")
"""

from __future__ import annotations


class SkfleetError(Exception):
    """A problem with the user's input or environment, told in one line."""

    exit_code = 2

    def __init__(self, message: str):
        # One line, always: a multi-line message from a driver is folded so the CLI prints one line.
        super().__init__(" ".join(str(message).split()))


class UsageError(SkfleetError):
    """A flag or argument has a value skfleet cannot use."""


class SourceNotFoundError(SkfleetError):
    """A file, bucket, table or query that does not exist or cannot be reached."""


class MissingColumnError(SkfleetError):
    """A column the job needs is absent from the table."""


class TargetExistsError(SkfleetError):
    """The output exists and ``if_exists='fail'`` was asked for."""


class DataError(SkfleetError):
    """The data itself is malformed: a bad CSV row, a type that cannot be coerced, ..."""


class ConnectionFailedError(SkfleetError):
    """A server could not be reached or refused the credentials."""


class PartitionFailedError(SkfleetError):
    """A partition failed after every retry; the message names the partition and the cause."""


class ModelNotFoundError(SkfleetError):
    """No model of that name or version is in the store."""


class UntrustedModelError(SkfleetError):
    """A stored artifact names things outside the allowed lists and ``trust=True`` was not given."""


class SkfleetWarning(UserWarning):
    """Base of skfleet's own warnings (turned into errors in the test suite)."""


class DriftWarning(SkfleetWarning):
    """The data at prediction time differs from the data the model was trained on."""


class LibraryVersionWarning(SkfleetWarning):
    """A stored model was saved with other major.minor versions of the libraries it needs."""
