"""The feature contract: everything needed to rebuild the features, as plain JSON.

A :class:`FeatureContract` lists every input column with its logical kind, Arrow type, fill value,
missing-value indicator, category levels (most frequent first, the rest folded into
``__other__``), datetime parts and hashing settings; then the output feature names in order, the
drift policies, the encoder settings and the library versions it was learned with.

>>> spec = ColumnSpec("carrier", "categorical", "large_string", levels=["UA", "B6"],
...                   other_levels=["HA"], fill_value="UA")
>>> spec.output_names()
['carrier=UA', 'carrier=B6', 'carrier=__other__']
>>> c = FeatureContract.build([spec, ColumnSpec("id", "excluded", "int64", reason="exclude=")])
>>> c.input_columns, c.feature_names
(['carrier'], ['carrier=UA', 'carrier=B6', 'carrier=__other__'])
>>> FeatureContract.from_json(c.to_json()) == c
True
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field, fields, replace
from typing import Any

from skfleet.errors import DataError

FORMAT_VERSION = 1
KINDS = ("numeric", "boolean", "categorical", "datetime", "text", "excluded")
POLICIES = ("error", "warn", "coerce")
OTHER = "__other__"
MISSING_SUFFIX = "__missing"


@dataclass
class HashSpec:
    """Hashing of a high-cardinality or text column: MurmurHash3 of the UTF-8 text, modulo
    ``n_features`` (a value, or each word for text, adds 1 to its bucket)."""

    n_features: int
    seed: int = 0


@dataclass
class ColumnSpec:
    """How one input column becomes output features.

    - ``numeric``: ``(value - center) / scale``; missing (null, NaN, inf) -> ``fill_value`` first.
    - ``boolean``: 0/1; missing -> ``fill_value``.
    - ``categorical``: one-hot over ``levels`` plus ``__other__`` (for ``other_levels`` seen at
      fit but capped, and for unseen levels); missing -> ``fill_value`` level. With ``hash`` set
      instead of levels: one-hot over hash buckets, missing -> no bucket.
    - ``datetime``: ``parts`` (year, month, dayofweek, hour as numbers; epoch seconds scaled by
      center/scale); missing -> ``fill_value`` (an integer in the column's Arrow unit). Dates
      written as text are parsed to ``parsed_type`` first.
    - ``text``: counts of hashed words; missing -> no words.
    - ``excluded``: nothing (ids, empty columns, ``exclude=``); not needed at transform time.

    ``indicator`` adds a ``<name>__missing`` column (1 where the value was missing).
    """

    name: str
    kind: str
    arrow_type: str
    reason: str = ""
    fill_value: Any = None
    indicator: bool = False
    center: float | None = None
    scale: float | None = None
    levels: list | None = None
    other_levels: list | None = None
    parts: list[str] | None = None
    hash: HashSpec | None = None
    parsed_type: str | None = None
    n_missing: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise DataError(f"column {self.name!r}: unknown kind {self.kind!r} in feature contract")

    @property
    def hashed(self) -> bool:
        return self.hash is not None

    def output_names(self) -> list[str]:
        """Names of the output features of this column, in order."""
        n = self.name
        if self.kind == "excluded":
            return []
        if self.kind in ("numeric", "boolean"):
            names = [n]
        elif self.kind == "datetime":
            names = [f"{n}__{part}" for part in self.parts or []]
        elif self.hash is not None:
            names = [f"{n}__hash{i}" for i in range(self.hash.n_features)]
        else:
            names = [f"{n}={level}" for level in self.levels or []] + [f"{n}={OTHER}"]
        if self.indicator:
            names.append(n + MISSING_SUFFIX)
        return names

    @property
    def width(self) -> int:
        """``len(self.output_names())``, counted without building the names (a hashed column
        has ``2**18`` of them, and every transform asks)."""
        if self.kind == "excluded":
            return 0
        if self.kind in ("numeric", "boolean"):
            body = 1
        elif self.kind == "datetime":
            body = len(self.parts or [])
        elif self.hash is not None:
            body = self.hash.n_features
        else:
            body = len(self.levels or []) + 1
        return body + (1 if self.indicator else 0)

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["hash"] = None if self.hash is None else vars(self.hash).copy()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnSpec:
        data = dict(data)
        if data.get("hash") is not None:
            data["hash"] = HashSpec(**data["hash"])
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise DataError(
                f"column {data.get('name')!r}: unknown fields {sorted(unknown)} in feature contract"
            )
        return cls(**data)


def library_versions() -> dict[str, str]:
    """Versions of the libraries whose behaviour the encoded features depend on."""
    import numpy
    import pandas
    import pyarrow
    import sklearn

    import skfleet

    return {
        "python": platform.python_version(),
        "skfleet": skfleet.__version__,
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
        "pyarrow": pyarrow.__version__,
        "scikit-learn": sklearn.__version__,
    }


@dataclass
class FeatureContract:
    """Columns in, features out; see the module docstring. Build with :meth:`build`."""

    columns: list[ColumnSpec]
    feature_names: list[str]
    sparse: bool = False
    on_missing_column: str = "error"
    on_unseen_level: str = "coerce"
    on_type_drift: str = "coerce"
    target: str | None = None
    n_rows: int = 0
    settings: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    @classmethod
    def build(cls, columns: list[ColumnSpec], **kwargs: Any) -> FeatureContract:
        """A contract whose feature names follow from ``columns`` (checked to be unique)."""
        names = [name for spec in columns for name in spec.output_names()]
        _check_unique(names, columns)
        kwargs.setdefault("versions", library_versions())
        return cls(columns=list(columns), feature_names=names, **kwargs)

    @property
    def input_columns(self) -> list[str]:
        """Columns a table must provide at transform time (every column not excluded)."""
        return [c.name for c in self.columns if c.kind != "excluded"]

    @property
    def excluded_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.kind == "excluded"]

    @property
    def exclusions(self) -> dict[str, str]:
        """Why each excluded column was set aside (``fit`` warns about these; ``partial_fit``
        and ``merge`` do not, so incremental callers can report them from here).

        >>> FeatureContract.build([ColumnSpec("id", "excluded", "int64", reason="exclude=")]).exclusions
        {'id': 'exclude='}
        """
        return {c.name: c.reason for c in self.columns if c.kind == "excluded"}

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def column(self, name: str) -> ColumnSpec:
        for spec in self.columns:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def with_policies(self, **policies: str) -> FeatureContract:
        """A copy with other drift policies (``on_missing_column=`` ...).

        >>> FeatureContract.build([]).with_policies(on_unseen_level="error").on_unseen_level
        'error'
        """
        for key, value in policies.items():
            if key not in ("on_missing_column", "on_unseen_level", "on_type_drift"):
                raise TypeError(f"unknown drift policy {key!r}")
            check_policy(key, value)
        return replace(self, **policies)

    # -- serialisation -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain builtins only (JSON-ready)."""
        return {
            "format_version": self.format_version,
            "columns": [c.to_dict() for c in self.columns],
            "feature_names": list(self.feature_names),
            "sparse": self.sparse,
            "on_missing_column": self.on_missing_column,
            "on_unseen_level": self.on_unseen_level,
            "on_type_drift": self.on_type_drift,
            "target": self.target,
            "n_rows": self.n_rows,
            "settings": self.settings,
            "versions": self.versions,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureContract:
        """Inverse of :meth:`to_dict`; refuses newer formats and inconsistent feature names."""
        if not isinstance(data, dict) or "format_version" not in data:
            raise DataError("not a feature contract: the 'format_version' field is missing")
        version = data["format_version"]
        if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
            raise DataError(
                f"feature contract format {version!r} is not supported by this skfleet "
                f"(it reads formats 1 to {FORMAT_VERSION}); upgrade skfleet"
            )
        try:
            columns = [ColumnSpec.from_dict(c) for c in data["columns"]]
            contract = cls(
                columns=columns,
                feature_names=list(data["feature_names"]),
                sparse=bool(data["sparse"]),
                on_missing_column=data["on_missing_column"],
                on_unseen_level=data["on_unseen_level"],
                on_type_drift=data["on_type_drift"],
                target=data.get("target"),
                n_rows=int(data.get("n_rows", 0)),
                settings=dict(data.get("settings", {})),
                versions=dict(data.get("versions", {})),
                format_version=version,
            )
        except (KeyError, TypeError) as exc:
            raise DataError(f"feature contract is incomplete or malformed: {exc!r}") from exc
        for key in ("on_missing_column", "on_unseen_level", "on_type_drift"):
            check_policy(key, getattr(contract, key))
        expected = [name for spec in columns for name in spec.output_names()]
        if expected != contract.feature_names:
            raise DataError(
                "feature contract is inconsistent: its feature_names do not follow from its columns"
            )
        return contract

    def to_json(self, indent: int | None = 1) -> str:
        """Strict JSON (no NaN); ``from_json(to_json())`` gives an equal contract."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> FeatureContract:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise DataError(f"feature contract is not valid JSON: {exc}") from exc
        return cls.from_dict(data)


def check_policy(name: str, value: str) -> str:
    """Validate a drift policy value.

    >>> check_policy("on_type_drift", "ignore")
    Traceback (most recent call last):
    ...
    skfleet.features.errors.FeatureParamError: on_type_drift must be one of 'error', 'warn', 'coerce', got 'ignore'
    """
    from skfleet.features.errors import FeatureParamError

    if value not in POLICIES:
        choices = ", ".join(repr(p) for p in POLICIES)
        raise FeatureParamError(f"{name} must be one of {choices}, got {value!r}")
    return value


def _check_unique(names: list[str], columns: list[ColumnSpec]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            owners = [c.name for c in columns if name in c.output_names()]
            raise DataError(
                f"feature name {name!r} is produced twice (by column(s) {owners}); rename a column "
                "or exclude one"
            )
        seen.add(name)
