"""What an out-of-core training run is asked to do: one frozen dataclass, checked on creation.

:func:`skfleet.train.stream.api.train_stream` builds a :class:`StreamConfig` from its keyword
arguments, so ``epochs=3, holdout=0.2`` work as well as the dataclass itself.

>>> config = StreamConfig.build(target="late", epochs=3, keys=["flight_id"])
>>> config.epochs, config.keys, config.holdout
(3, ('flight_id',), 0.1)
>>> StreamConfig.build(target="late", epochs=0)
Traceback (most recent call last):
...
skfleet.errors.UsageError: --epochs must be a positive integer, not 0
>>> StreamConfig.build(target="late", passes=2)
Traceback (most recent call last):
...
skfleet.errors.UsageError: unknown train-stream option 'passes' (options: batch_rows, checkpoint_every, early_stopping, encoder, epochs, exclude, holdout, holdout_key, keys, missing_target, params, partition_rows, patience, progressive, resume, seed, target, tol, workers)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from skfleet.errors import UsageError
from skfleet.train.config import check_missing_target, check_roles, column_names

DEFAULT_PARTITION_ROWS = 250_000
DEFAULT_BATCH_ROWS = 20_000


def _positive_int(value: Any, flag: str, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"{flag} must be a positive integer, not {value!r}")


@dataclass(frozen=True)
class StreamConfig:
    """The choices of a streamed training run.

    - ``target``: column to predict (``None`` for clustering and transforms); ``keys``: identifier
      columns (not features); ``exclude``: columns left out; ``params``: estimator parameters;
      ``encoder``: keyword arguments of :class:`skfleet.features.TableEncoder` (``hash``,
      ``hash_features``, ``max_levels``, ...).
    - ``epochs``: passes over the data; ``partition_rows``: rows per partition (one read, one
      shuffle); ``batch_rows``: rows per ``partial_fit`` call.
    - ``holdout``: fraction of rows held out, chosen by a hash of ``holdout_key`` (a column) or
      of the row's position; ``progressive``: score each batch before learning it.
    - ``early_stopping``: stop when the holdout score has not improved by ``tol`` for
      ``patience`` epochs, keeping the best epoch's model.
    - ``checkpoint_every``: save a checkpoint every N partitions; ``resume``: continue from it.
    - ``seed``: the partition order of epoch ``e`` and the row order inside partition ``p`` come
      from ``numpy.random.default_rng([seed, e])`` and ``default_rng([seed, e, p])``.
    - ``workers``: > 1 trains data-parallel on the engine (linear models: one SGD per worker on
      disjoint partitions, parameters averaged after each epoch).
    """

    target: str | None = None
    keys: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    encoder: Mapping[str, Any] = field(default_factory=dict)
    epochs: int = 1
    partition_rows: int = DEFAULT_PARTITION_ROWS
    batch_rows: int = DEFAULT_BATCH_ROWS
    holdout: float = 0.1
    holdout_key: str | None = None
    progressive: bool = True
    early_stopping: bool = False
    patience: int = 2
    tol: float = 1e-4
    checkpoint_every: int | None = None
    resume: bool = False
    seed: int = 0
    missing_target: str = "drop"
    workers: int = 1

    def __post_init__(self):
        for name in ("keys", "exclude"):
            object.__setattr__(self, name, column_names(getattr(self, name)))
        if self.target is not None and (not isinstance(self.target, str) or not self.target):
            raise UsageError(f"--target must be a column name, not {self.target!r}")
        _positive_int(self.epochs, "--epochs")
        _positive_int(self.partition_rows, "--partition-rows")
        _positive_int(self.batch_rows, "--batch-rows")
        _positive_int(self.patience, "--patience")
        _positive_int(self.checkpoint_every, "--checkpoint-every", allow_none=True)
        _positive_int(self.workers, "--workers")
        holdout = self.holdout
        if (
            isinstance(holdout, bool)
            or not isinstance(holdout, int | float)
            or not 0 <= holdout < 1
        ):
            raise UsageError(f"--holdout must be a fraction in [0, 1), not {holdout!r}")
        if self.early_stopping and holdout == 0:
            raise UsageError("--early-stopping needs a holdout: give --holdout above 0")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise UsageError(f"--seed must be a non-negative integer, not {self.seed!r}")
        check_missing_target(self.missing_target)
        self._check_roles()

    def _check_roles(self) -> None:
        """A column plays one role: target, key or excluded."""
        named = [("--target", self.target)] if self.target else []
        named += [("--key", k) for k in self.keys] + [("--exclude", c) for c in self.exclude]
        check_roles(named)
        if self.holdout_key is not None and self.holdout_key == self.target:
            raise UsageError(f"--holdout-key {self.holdout_key!r} is the target column")

    @classmethod
    def build(cls, config: StreamConfig | None = None, **options: Any) -> StreamConfig:
        """``config`` updated with ``options`` (``None`` values are ignored)."""
        options = {k: v for k, v in options.items() if v is not None}
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - names)
        if unknown:
            raise UsageError(
                f"unknown train-stream option {unknown[0]!r} (options: {', '.join(sorted(names))})"
            )
        if config is None:
            return cls(**options)
        return replace(config, **options)
