"""Errors and warnings specific to feature encoding.

The errors are ordinary :class:`~skfleet.errors.SkfleetError` subclasses (one line, naming the
column at fault) that are *also* ``ValueError``: scikit-learn tools (``check_estimator``,
``cross_validate`` with ``error_score``) expect input validation to raise ``ValueError``.

>>> err = FeatureInputError("cannot fit on an empty table (0 rows)")
>>> isinstance(err, DataError), isinstance(err, ValueError)
(True, True)
"""

from __future__ import annotations

from skfleet.errors import DataError, SkfleetWarning, UsageError


class FeatureInputError(DataError, ValueError):
    """The table given to the encoder cannot be encoded (empty, wrong shape, mixed types, ...)."""


class FeatureParamError(UsageError, ValueError):
    """A :class:`~skfleet.features.TableEncoder` parameter has a value the encoder cannot use."""


class FeatureWarning(SkfleetWarning):
    """A column was set aside while learning the feature contract (an id, all null, ...)."""
