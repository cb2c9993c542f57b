"""The values of flags that both the command line and the API check, in a module that imports
nothing: ``skfleet COMMAND --help`` lists them without loading pyarrow, the data backends or
scikit-learn (the modules that use them re-export them from here).

>>> IF_EXISTS_CHOICES
('fail', 'replace', 'append')
>>> "warn" in DUPLICATE_KEY_CHOICES
True
"""

from __future__ import annotations

#: ``--if-exists``: what writing to an output that already exists does.
IF_EXISTS_CHOICES: tuple[str, ...] = ("fail", "replace", "append")

#: ``--duplicate-keys``: what a key that is not unique in the input does.
DUPLICATE_KEY_CHOICES: tuple[str, ...] = ("warn", "error", "ignore")

#: ``train --calibrate``: how predicted probabilities are calibrated on the run's folds.
CALIBRATION_CHOICES: tuple[str, ...] = ("sigmoid", "isotonic")

#: ``models drift``: runs shown, and the PSI above which a column is flagged (0.2: inside the
#: common rule of thumb's 0.1-0.25 "some shift" band; above 0.25 is a major shift).
DRIFT_RUNS = 10
DRIFT_THRESHOLD = 0.2


def check_drift_options(runs, threshold) -> tuple[int, float]:
    """``models drift --runs N --threshold PSI`` checked; raises ValueError naming the flag.

    >>> check_drift_options(3, 0.1)
    (3, 0.1)
    >>> check_drift_options(0, 0.2)
    Traceback (most recent call last):
    ...
    ValueError: --runs must be a whole number of at least 1, not 0
    """
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        raise ValueError(f"--runs must be a whole number of at least 1, not {runs!r}")
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not threshold > 0:
        raise ValueError(f"--threshold must be a PSI above 0, not {threshold!r}")
    return runs, float(threshold)


#: ``predict --engine`` when none is given.
DEFAULT_ENGINE = "dask:local"

#: ``copy --partition-rows`` when none is given.
COPY_PARTITION_ROWS = 500_000

#: ``predict --bad-rows``: what a row the feature contract cannot encode does (``quarantine``
#: may name where the refused rows go: ``quarantine=URL``).
BAD_ROWS_CHOICES: tuple[str, ...] = ("error", "skip", "quarantine")

#: Why a row was refused (``skfleet.features.rowcheck`` says what each means).
BAD_ROW_REASONS: tuple[str, ...] = (
    "unparseable_number",
    "unparseable_date",
    "unparseable_boolean",
    "not_whole_number",
    "inexact_number",
    "type_refused",
    "unseen_level",
    "missing_required",
    "non_finite",
)


def split_bad_rows(value: str) -> tuple[str, str | None]:
    """``--bad-rows`` as (mode, quarantine URL or None); raises ValueError for anything else.

    >>> split_bad_rows("skip"), split_bad_rows("quarantine=s3://b/bad/")
    (('skip', None), ('quarantine', 's3://b/bad/'))
    >>> split_bad_rows("drop")
    Traceback (most recent call last):
    ...
    ValueError: --bad-rows must be error, skip, quarantine or quarantine=URL, not 'drop'
    """
    mode, sep, url = str(value).partition("=")
    if mode in BAD_ROWS_CHOICES and (not sep or (mode == "quarantine" and url.strip())):
        return mode, url.strip() if sep else None
    raise ValueError(f"--bad-rows must be error, skip, quarantine or quarantine=URL, not {value!r}")
