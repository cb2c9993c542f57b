"""What a training run is asked to do, as three small frozen dataclasses.

:class:`TrainConfig` holds the table-side choices (target, keys, exclusions, segments) and embeds a
:class:`CVConfig` and an optional :class:`SearchConfig`. :meth:`TrainConfig.build` is what
:func:`skfleet.train.train` calls with the keyword arguments it was given, so ``cv=5`` and
``search={"method": "grid", "grid": {...}}`` work as well as the dataclasses themselves.

>>> config = TrainConfig.build(target="late", keys=["flight_id"], cv=3,
...                            search={"method": "random", "grid": {"C": [0.1, 1.0]}, "n_iter": 2})
>>> config.cv.folds, config.search.method, config.keys
(3, 'random', ('flight_id',))
>>> TrainConfig.build(target="late", folds=3)
Traceback (most recent call last):
...
skfleet.errors.UsageError: unknown training option 'folds' (options: calibrate, cv, encode, encoder, exclude, group_by, keys, min_segment_rows, missing_target, params, search, target, weight)
>>> TrainConfig.build(target="late", calibrate="platt")
Traceback (most recent call last):
...
skfleet.errors.UsageError: --calibrate must be one of sigmoid, isotonic, not 'platt'
>>> TrainConfig.build(target="late", weight="late")
Traceback (most recent call last):
...
skfleet.errors.UsageError: column 'late' is given both as --target and --weight
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from skfleet.errors import UsageError
from skfleet.util.choices import CALIBRATION_CHOICES

SEARCH_METHODS = ("grid", "random", "halving")
MISSING_TARGET_CHOICES = ("drop", "error")


def column_names(value: str | Sequence[str]) -> tuple[str, ...]:
    """``keys`` or ``exclude`` as given (one name or several) as a tuple of names.

    >>> column_names("id"), column_names(["id", "day"])
    (('id',), ('id', 'day'))
    """
    return (value,) if isinstance(value, str) else tuple(value)


def check_missing_target(value: Any) -> None:
    """``missing_target`` is one of :data:`MISSING_TARGET_CHOICES` (batch and streamed runs)."""
    if value not in MISSING_TARGET_CHOICES:
        raise UsageError(
            f"missing_target must be one of {', '.join(MISSING_TARGET_CHOICES)}, not {value!r}"
        )


@dataclass(frozen=True)
class CVConfig:
    """K-fold cross-validation (stratified for classifiers); ``folds=0`` skips it."""

    folds: int = 5
    shuffle: bool = True
    random_state: int | None = 0

    def __post_init__(self):
        folds = self.folds
        if isinstance(folds, bool) or not isinstance(folds, int) or folds < 0 or folds == 1:
            raise UsageError(f"--cv must be 0 (no cross-validation) or at least 2, not {folds!r}")


@dataclass(frozen=True)
class SearchConfig:
    """A hyperparameter search over ``grid`` (the model's own parameter names -> candidates).

    ``method`` is ``grid`` (every combination), ``random`` (``n_iter`` sampled combinations) or
    ``halving`` (successive halving over the rows, ``factor`` as scikit-learn's). ``scoring`` is
    any scikit-learn scorer name; by default ROC AUC for binary classifiers with probabilities,
    log loss for other probabilistic classifiers, accuracy otherwise, R2 for regressors.
    """

    method: str = "grid"
    grid: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    n_iter: int = 10
    factor: int = 3
    scoring: str | None = None
    random_state: int | None = 0

    def __post_init__(self):
        if self.method not in SEARCH_METHODS:
            raise UsageError(
                f"--search must be one of {', '.join(SEARCH_METHODS)}, not {self.method!r}"
            )
        if not self.grid:
            raise UsageError("--search needs at least one --grid NAME=V1,V2,...")
        for key, values in self.grid.items():
            if isinstance(values, str | bytes) or not isinstance(values, Sequence) or not values:
                raise UsageError(f"--grid {key} needs a non-empty list of values")
        for name in ("n_iter", "factor"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UsageError(f"search {name} must be a positive integer, not {value!r}")
        if self.method == "halving" and self.factor < 2:
            raise UsageError(f"search factor must be at least 2 for halving, not {self.factor}")

    @property
    def n_candidates(self) -> int:
        """How many parameter combinations the full grid holds."""
        count = 1
        for values in self.grid.values():
            count *= len(values)
        return count

    @classmethod
    def coerce(cls, value: SearchConfig | Mapping[str, Any] | None) -> SearchConfig | None:
        if value is None or isinstance(value, SearchConfig):
            return value
        if isinstance(value, Mapping):
            return _construct(cls, value, "search option")
        raise UsageError(f"search must be a SearchConfig or a dict, not {type(value).__name__}")


@dataclass(frozen=True)
class TrainConfig:
    """The table-side choices of a training run.

    - ``target``: the column to predict. ``keys``: identifier columns, never features, copied
      into the out-of-fold predictions. ``exclude``: columns left out entirely.
    - ``params``: estimator parameters (checked against the estimator's own).
    - ``encoder``: keyword arguments for :class:`skfleet.features.TableEncoder`.
    - ``encode``: put the TableEncoder in front of the estimator (``True``), or hand the
      estimator the table as a pandas DataFrame, checked against the contract but not encoded
      (``False``: :class:`skfleet.features.frame.TableFrame`); ``None`` (the default) decides
      by the estimator: a Pipeline or ColumnTransformer that selects columns by name gets the
      DataFrame.
    - ``group_by``: fit one model per distinct value of this column (see
      :class:`skfleet.train.segments.SegmentRouter`); segments with fewer than
      ``min_segment_rows`` rows use the global model.
    - ``missing_target``: rows whose target is null or NaN are ``drop``-ped (and counted) or an
      ``error``.
    - ``weight``: a column of sample weights (numbers >= 0, not all zero, no nulls): passed to
      the estimator's ``fit`` as ``sample_weight`` and used by the out-of-fold metrics; not a
      feature, and not needed at prediction time (:mod:`skfleet.train.weights`).
    - ``calibrate``: ``sigmoid`` or ``isotonic``: the classifier is wrapped in scikit-learn's
      ``CalibratedClassifierCV`` over the run's folds (:mod:`skfleet.train.calibration`).
    """

    target: str = ""
    keys: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    encoder: Mapping[str, Any] = field(default_factory=dict)
    encode: bool | None = None
    cv: CVConfig = field(default_factory=CVConfig)
    search: SearchConfig | None = None
    group_by: str | None = None
    min_segment_rows: int = 30
    missing_target: str = "drop"
    weight: str | None = None
    calibrate: str | None = None

    def __post_init__(self):
        if not isinstance(self.target, str) or not self.target:
            raise UsageError("--target is required: the name of the column to predict")
        for name in ("keys", "exclude"):
            object.__setattr__(self, name, column_names(getattr(self, name)))
        check_missing_target(self.missing_target)
        if self.encode not in (None, True, False):
            raise UsageError(f"encode must be True, False or None, not {self.encode!r}")
        value = self.min_segment_rows
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UsageError(f"min_segment_rows must be a positive integer, not {value!r}")
        if self.weight is not None and (not isinstance(self.weight, str) or not self.weight):
            raise UsageError(f"--weight must name a column, not {self.weight!r}")
        if self.calibrate is not None:
            if self.calibrate not in CALIBRATION_CHOICES:
                raise UsageError(
                    f"--calibrate must be one of {', '.join(CALIBRATION_CHOICES)}, "
                    f"not {self.calibrate!r}"
                )
            if self.cv.folds == 0:
                raise UsageError(
                    "--calibrate fits its calibration on the run's folds: use --cv 2 or more"
                )
        for flag in ("weight", "calibrate"):
            if getattr(self, flag) is not None and self.group_by is not None:
                raise UsageError(f"--{flag} cannot be combined with --group-by (segment models)")
        self._check_roles()

    def _check_roles(self) -> None:
        """A column plays one role: target, key, excluded or segment."""
        named = [("--target", self.target)]
        named += [("--key", k) for k in self.keys] + [("--exclude", c) for c in self.exclude]
        if self.group_by is not None:
            named.append(("--group-by", self.group_by))
        if self.weight is not None:
            named.append(("--weight", self.weight))
        check_roles(named)

    @classmethod
    def build(cls, config: TrainConfig | None = None, **options: Any) -> TrainConfig:
        """``config`` updated with ``options`` (``cv`` may be an int, ``search`` a dict)."""
        options = {k: v for k, v in options.items() if v is not None}
        if "cv" in options and not isinstance(options["cv"], CVConfig):
            cv = options["cv"]
            options["cv"] = (
                _construct(CVConfig, cv, "cv option")
                if isinstance(cv, Mapping)
                else (CVConfig(folds=cv))
            )
        if "search" in options:
            options["search"] = SearchConfig.coerce(options["search"])
        if config is None:
            return _construct(cls, options, "training option")
        unknown = sorted(set(options) - {f.name for f in fields(cls)})
        if unknown:
            raise UsageError(f"unknown training option {unknown[0]!r}")
        return replace(config, **options)

    @property
    def roles(self) -> set[str]:
        """Every column named by the configuration."""
        named = {self.target, *self.keys, *self.exclude}
        named |= {self.weight} if self.weight else set()
        return named | ({self.group_by} if self.group_by else set())


def check_roles(named: list[tuple[str, str]]) -> None:
    """Each column plays one role: ``named`` holds ``(flag, column)`` pairs such as
    ``("--key", "id")``; a column named twice is refused, naming both flags (or the one).

    >>> check_roles([("--target", "y"), ("--key", "id")])
    >>> check_roles([("--target", "y"), ("--exclude", "y")])
    Traceback (most recent call last):
    ...
    skfleet.errors.UsageError: column 'y' is given both as --target and --exclude
    """
    roles: dict[str, str] = {}
    for flag, column in named:
        if column in roles:
            if roles[column] == flag:
                raise UsageError(f"{flag} {column!r} is given more than once")
            raise UsageError(f"column {column!r} is given both as {roles[column]} and {flag}")
        roles[column] = flag


def _construct(cls, values: Mapping[str, Any], what: str):
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise UsageError(f"unknown {what} {unknown[0]!r} (options: {', '.join(sorted(names))})")
    return cls(**dict(values))
