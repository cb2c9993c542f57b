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

#: ``predict --engine`` when none is given.
DEFAULT_ENGINE = "dask:local"

#: ``copy --partition-rows`` when none is given.
COPY_PARTITION_ROWS = 500_000
