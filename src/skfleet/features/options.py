"""Deep settings of the encoder, grouped so that the constructor stays short.

>>> EncoderOptions().max_distinct
1000
>>> EncoderOptions(scale=False).scale
False
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from skfleet.features.errors import FeatureParamError

#: Datetime parts the encoder knows how to derive, in output order.
DATETIME_PARTS: tuple[str, ...] = ("year", "month", "dayofweek", "hour", "epoch")
INDICATOR_CHOICES: tuple[str, ...] = ("auto", "always", "never")


@dataclass(frozen=True)
class EncoderOptions:
    """Settings that rarely need changing; pass one as ``TableEncoder(options=...)``.

    Attributes:
        max_distinct: string columns with more distinct values than this are hashed (or treated
            as text) instead of one-hot encoded; also the number of distinct values tracked per
            column while profiling.
        text_min_words: a hashed string column averaging at least this many words per value is
            ``text`` (bag of hashed words) rather than a hashed category.
        id_min_rows: an integer column unique per row is taken for an id and excluded only once at
            least this many rows were seen (uniqueness in a handful of rows proves nothing).
        scale: standardise numeric values and datetime epochs (mean 0, unit variance).
        indicators: missing-value indicator columns: ``"auto"`` (for columns with missing values
            at fit time), ``"always"`` or ``"never"``.
        datetime_parts: what a datetime column expands to (``hour`` is dropped for dates).
        sparse_above: with ``sparse="auto"`` the output is CSR when wider than this.
        hash_seed: seed of the murmurhash3 used for hashed columns.

    >>> EncoderOptions(indicators="sometimes").validate()
    Traceback (most recent call last):
    ...
    skfleet.features.errors.FeatureParamError: options.indicators must be one of 'auto', 'always', 'never', got 'sometimes'
    """

    max_distinct: int = 1000
    text_min_words: float = 3.0
    id_min_rows: int = 100
    scale: bool = True
    indicators: str = "auto"
    datetime_parts: tuple[str, ...] = DATETIME_PARTS
    sparse_above: int = 256
    hash_seed: int = 0

    def validate(self) -> EncoderOptions:
        """Return self, or raise :class:`FeatureParamError` naming the bad setting."""
        for name in ("max_distinct", "id_min_rows", "sparse_above"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise FeatureParamError(f"options.{name} must be a positive integer, got {value!r}")
        if self.indicators not in INDICATOR_CHOICES:
            choices = ", ".join(repr(c) for c in INDICATOR_CHOICES)
            raise FeatureParamError(
                f"options.indicators must be one of {choices}, got {self.indicators!r}"
            )
        bad = [p for p in self.datetime_parts if p not in DATETIME_PARTS]
        if bad or not self.datetime_parts:
            raise FeatureParamError(
                f"options.datetime_parts must be a non-empty subset of {DATETIME_PARTS}, got "
                f"{self.datetime_parts!r}"
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (tuples become lists).

        >>> EncoderOptions.from_dict(EncoderOptions(hash_seed=7).to_dict()).hash_seed
        7
        """
        out = asdict(self)
        out["datetime_parts"] = list(self.datetime_parts)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EncoderOptions:
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        if "datetime_parts" in kwargs:
            kwargs["datetime_parts"] = tuple(kwargs["datetime_parts"])
        return cls(**kwargs)
