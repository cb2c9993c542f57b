"""``TableEncoder``: a scikit-learn transformer from tables to model-ready float32 features.

It learns a :class:`~skfleet.features.FeatureContract` from a pyarrow Table or pandas DataFrame
(``fit``, or chunk by chunk with ``partial_fit``, or in parallel with ``merge``), then encodes any
table with the same columns: missing columns, unseen levels and type drift are handled by the
contract's policies and counted in a :class:`~skfleet.features.DriftReport`.

>>> import pyarrow as pa
>>> train = pa.table({"carrier": ["UA", "AA", "UA", "B6"], "distance": [1400, 1416, 1089, None]})
>>> enc = TableEncoder(max_levels=2).fit(train)
>>> enc.get_feature_names_out().tolist()
['carrier=UA', 'carrier=AA', 'carrier=__other__', 'distance', 'distance__missing']
>>> Xt, drift = enc.transform_with_drift(pa.table({"distance": [719], "carrier": ["WN"]}))
>>> Xt.round(2)
array([[ 0.  ,  0.  ,  1.  , -3.87,  0.  ]], dtype=float32)
>>> print(drift.summary())
drift in 1 rows:
- unseen levels in 'carrier': 1 values (e.g. 'WN'), encoded as __other__
>>> TableEncoder.from_contract(enc.contract_).transform(train).shape
(4, 5)
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterable

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.utils.validation import check_is_fitted

from skfleet.errors import DriftWarning, UsageError
from skfleet.features.contract import FeatureContract, check_policy
from skfleet.features.encode import encode_table
from skfleet.features.errors import FeatureInputError, FeatureParamError, FeatureWarning
from skfleet.features.infer import Plan, build_contract
from skfleet.features.options import EncoderOptions
from skfleet.features.profile import ROLES, TableProfile
from skfleet.features.state import pack, unpack
from skfleet.features.tables import as_input_table

_OVERRIDES = ("exclude", "numeric", "categorical", "hash", "text")


def _names(value, param: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, Iterable):
        raise FeatureParamError(f"{param}= must be a column name or a list of names, got {value!r}")
    names = tuple(value)
    for name in names:
        if not isinstance(name, str):
            raise FeatureParamError(f"{param}= must hold column names (strings), got {name!r}")
    return names


class TableEncoder(TransformerMixin, BaseEstimator):
    """Encode the columns of a table as float32 features, learning a feature contract.

    Parameters
    ----------
    categorical, numeric, exclude, hash, text : column names
        Override the inferred kind of these columns (``hash``: one-hot over hash buckets,
        ``text``: counts of hashed words).
    target : str, optional
        Name of the target column. Fitting raises if it is among the features (as it does when
        ``y`` is a named Series whose name is a column): drop it or list it in ``exclude``.
    max_levels : int
        Most frequent levels kept per categorical column; the rest go to ``<col>=__other__``.
    hash_features : int
        Buckets per hashed or text column.
    sparse : "auto", True or False
        Output a ``scipy.sparse.csr_matrix``; ``"auto"``: when wider than
        ``options.sparse_above`` features.
    on_missing_column, on_unseen_level, on_type_drift : "error", "warn" or "coerce"
        Drift policies recorded in the contract and applied by ``transform``. ``coerce`` fills a
        missing column as all-missing, routes unseen levels to ``__other__`` and converts types
        where no value changes (lossy conversions always raise); ``warn`` does the same and warns
        with :class:`~skfleet.errors.DriftWarning`; ``error`` raises.
    options : EncoderOptions, optional
        Deeper settings (distinct-value limit, indicators, scaling, datetime parts, ...).

    Attributes
    ----------
    contract_ : FeatureContract
    profile_ : TableProfile or None
        Mergeable statistics (``None`` when built with :meth:`from_contract`).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when fitted on a table with named columns.
    """

    def __init__(
        self,
        *,
        categorical=(),
        numeric=(),
        exclude=(),
        hash=(),
        text=(),
        target=None,
        max_levels=32,
        hash_features=64,
        sparse="auto",
        on_missing_column="error",
        on_unseen_level="coerce",
        on_type_drift="coerce",
        options=None,
    ):
        self.categorical = categorical
        self.numeric = numeric
        self.exclude = exclude
        self.hash = hash
        self.text = text
        self.target = target
        self.max_levels = max_levels
        self.hash_features = hash_features
        self.sparse = sparse
        self.on_missing_column = on_missing_column
        self.on_unseen_level = on_unseen_level
        self.on_type_drift = on_type_drift
        self.options = options

    # -- parameters -----------------------------------------------------------------------------

    def _plan(self) -> Plan:
        roles: dict[str, str] = {}
        settings: dict = {}
        for role in _OVERRIDES:
            names = _names(getattr(self, role), role)
            settings[role] = list(names)
            for name in names:
                if name in roles and roles[name] != role:
                    raise FeatureParamError(
                        f"column {name!r} is named in both {roles[name]}= and {role}="
                    )
                roles[name] = role
        assert set(roles.values()) <= set(ROLES)
        for param in ("max_levels", "hash_features"):
            value = getattr(self, param)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise FeatureParamError(f"{param} must be a positive integer, got {value!r}")
        if self.sparse not in ("auto", True, False):
            raise FeatureParamError(f"sparse must be 'auto', True or False, got {self.sparse!r}")
        if self.target is not None and not isinstance(self.target, str):
            raise FeatureParamError(f"target must be a column name, got {self.target!r}")
        options = self.options if self.options is not None else EncoderOptions()
        if not isinstance(options, EncoderOptions):
            raise FeatureParamError(f"options must be an EncoderOptions, got {options!r}")
        options.validate()
        policies = {
            key: check_policy(key, getattr(self, key))
            for key in ("on_missing_column", "on_unseen_level", "on_type_drift")
        }
        settings.update(
            target=self.target,
            max_levels=int(self.max_levels),
            hash_features=int(self.hash_features),
            sparse=self.sparse,
            options=options.to_dict(),
        )
        return Plan(
            roles=roles,
            max_levels=int(self.max_levels),
            hash_features=int(self.hash_features),
            sparse=self.sparse,
            options=options,
            policies=policies,
            target=self.target,
            settings=settings,
        )

    # -- fitting --------------------------------------------------------------------------------

    def _reset(self) -> None:
        for attr in ("profile_", "contract_", "n_features_in_", "feature_names_in_"):
            self.__dict__.pop(attr, None)
        self.__dict__.pop("_positional_input", None)

    def fit(self, X, y=None):
        """Learn the contract from ``X`` (pyarrow Table, pandas DataFrame or 2-D array)."""
        self._reset()
        table = as_input_table(X)
        if table.n_rows == 0:
            raise FeatureInputError(
                f"cannot fit on an empty table (0 rows, {len(table.names)} columns)"
            )
        return self._learn(table, y, warn=True)

    def partial_fit(self, X, y=None):
        """Add the rows of ``X`` to the statistics and relearn the contract.

        Fitting chunk by chunk gives the same contract as one ``fit`` over all rows (the same
        levels; means and variances to rounding). An empty chunk adds nothing; the encoder is
        fitted once it has seen at least one row.

        Unlike ``fit``, it does not warn about excluded columns (ids, empty columns): seen from
        one chunk such a decision may be premature. Look at ``contract_.excluded_columns`` and
        each column's ``reason`` once all chunks are in.
        """
        if hasattr(self, "contract_") and getattr(self, "profile_", None) is None:
            raise UsageError(
                "this encoder was built from a contract alone and holds no statistics to add to; "
                "fit a new encoder"
            )
        table = as_input_table(X)
        self._check_width(table)
        return self._learn(table, y)

    def _check_target(self, table, y) -> None:
        candidates = [(self.target, "target=")] if self.target is not None else []
        name = getattr(y, "name", None)
        if isinstance(name, str) and hasattr(y, "shape"):
            candidates.append((name, "y"))
        excluded = set(_names(self.exclude, "exclude"))
        for column, source in candidates:
            if column in table.columns and column not in excluded:
                raise UsageError(
                    f"column {column!r} is the target ({source}) and also a feature; drop it from "
                    f"the table or pass exclude=[{column!r}]"
                )

    def _learn(self, table, y, warn: bool = False):
        plan = self._plan()
        self._check_target(table, y)
        chunk = TableProfile.of(table, plan.roles, plan.options.max_distinct)
        previous = getattr(self, "profile_", None)
        profile = previous.merge(chunk) if previous is not None else chunk
        positional = getattr(self, "_positional_input", table.positional)
        self._commit(profile, plan, positional and table.positional, warn)
        return self

    def _commit(self, profile: TableProfile, plan: Plan, positional: bool, warn: bool) -> None:
        """Build the contract, then set every fitted attribute (nothing is set if that fails)."""
        found: list[str] = []
        if profile.n_rows:
            plan.settings["positional_input"] = positional
            contract, found = build_contract(profile, plan)
        self.profile_ = profile
        if profile.n_rows:
            self.contract_ = contract
        self.n_features_in_ = len(profile.order)
        self._positional_input = positional
        if not positional:
            self.feature_names_in_ = np.asarray(profile.order, dtype=object)
        for message in found if warn else ():
            warnings.warn(message, FeatureWarning, stacklevel=4)

    def check_params(self) -> None:
        """Raise the error a bad parameter would give at ``fit``, without any data."""
        self._plan()

    def statistics(self, X) -> TableProfile:
        """The row statistics of ``X`` that ``partial_fit`` would add, without a contract.

        Statistics merge (``a.merge(b)``: those of both row sets) and
        :meth:`from_statistics` builds the fitted encoder once at the end: a pass over many
        partitions skips building a contract per partition (costly with wide hashed columns).

        >>> import pyarrow as pa
        >>> enc = TableEncoder()
        >>> parts = [enc.statistics(pa.table({"x": v})) for v in ([1.0, 2.0], [3.0, 4.0, 5.0])]
        >>> enc.from_statistics(parts[0].merge(parts[1])).contract_.column("x").center
        3.0
        """
        plan = self._plan()
        table = as_input_table(X)
        self._check_target(table, None)
        return TableProfile.of(table, plan.roles, plan.options.max_distinct)

    def from_statistics(self, statistics: TableProfile) -> TableEncoder:
        """A fitted encoder with this one's parameters, from :meth:`statistics` (merged)."""
        encoder = clone(self)
        encoder._commit(statistics, encoder._plan(), positional=False, warn=False)
        return encoder

    def merge(self, other: TableEncoder) -> TableEncoder:
        """Fold ``other``'s statistics into this encoder (equal to fitting on both row sets).

        Like ``partial_fit``, it does not warn about excluded columns.

        >>> import pyarrow as pa
        >>> a = TableEncoder().partial_fit(pa.table({"x": [1.0, 2.0]}))
        >>> b = TableEncoder().partial_fit(pa.table({"x": [3.0, 4.0, 5.0]}))
        >>> a.merge(b).contract_.column("x").center
        3.0
        """
        if not isinstance(other, TableEncoder):
            raise TypeError(f"can only merge another TableEncoder, got {type(other).__name__}")
        theirs = getattr(other, "profile_", None)
        if theirs is None:
            if hasattr(other, "contract_"):
                raise UsageError("cannot merge an encoder built from a contract alone")
            return self
        mine_plan, their_plan = self._plan(), other._plan()
        if (mine_plan.settings, mine_plan.policies) != (their_plan.settings, their_plan.policies):
            raise FeatureParamError("cannot merge encoders with different parameters")
        if hasattr(self, "contract_") and getattr(self, "profile_", None) is None:
            raise UsageError("cannot merge into an encoder built from a contract alone")
        mine = getattr(self, "profile_", None)
        profile = mine.merge(theirs) if mine is not None else copy.deepcopy(theirs)
        positional = getattr(self, "_positional_input", True) and other._positional_input
        self._commit(profile, mine_plan, positional, warn=False)
        return self

    # -- encoding -------------------------------------------------------------------------------

    def _check_width(self, table) -> None:
        positional = getattr(self, "_positional_input", False) and table.positional
        if positional and len(table.names) != self.n_features_in_:
            raise FeatureInputError(
                f"X has {len(table.names)} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input"
            )

    def transform_with_drift(self, X):
        """``(features, DriftReport)`` for ``X``; error policies raise, nothing warns.

        Safe to call from several threads at once: it reads the contract and changes nothing.
        """
        check_is_fitted(self, "contract_")
        table = as_input_table(X)
        self._check_width(table)
        return encode_table(self.contract_, table)

    def transform(self, X):
        """Features of ``X`` as float32 (dense ndarray, or CSR when the contract says sparse).

        Applies the contract's drift policies; ``warn`` policies warn with ``DriftWarning``.
        """
        Xt, report = self.transform_with_drift(X)
        contract = self.contract_
        warn = []
        if report.missing_columns and contract.on_missing_column == "warn":
            warn.append("missing columns")
        if report.unseen_levels and contract.on_unseen_level == "warn":
            warn.append("unseen levels")
        if report.coerced and contract.on_type_drift == "warn":
            warn.append("type drift")
        if warn:
            warnings.warn(
                f"{' and '.join(warn)} while encoding: " + "; ".join(report.lines()),
                DriftWarning,
                stacklevel=2,
            )
        return Xt

    def get_feature_names_out(self, input_features=None):
        """Output feature names, in order."""
        check_is_fitted(self, "contract_")
        if input_features is not None:
            given = [str(f) for f in input_features]
            if hasattr(self, "feature_names_in_"):
                if given != list(self.feature_names_in_):
                    raise FeatureParamError("input_features is not equal to feature_names_in_")
            elif len(given) != self.n_features_in_:
                raise FeatureParamError(
                    f"input_features should have length equal to n_features_in_ "
                    f"({self.n_features_in_}), got {len(given)}"
                )
        return np.asarray(self.contract_.feature_names, dtype=object)

    # -- contracts ------------------------------------------------------------------------------

    @classmethod
    def from_contract(cls, contract: FeatureContract) -> TableEncoder:
        """A fitted encoder from a contract alone (e.g. ``FeatureContract.from_json(text)``)."""
        s = contract.settings
        options = EncoderOptions.from_dict(s["options"]) if s.get("options") else None
        enc = cls(
            **{role: tuple(s.get(role, ())) for role in _OVERRIDES},
            target=contract.target,
            max_levels=s.get("max_levels", 32),
            hash_features=s.get("hash_features", 64),
            sparse=s.get("sparse", contract.sparse),
            on_missing_column=contract.on_missing_column,
            on_unseen_level=contract.on_unseen_level,
            on_type_drift=contract.on_type_drift,
            options=options,
        )
        enc.contract_ = contract
        enc.profile_ = None
        enc.n_features_in_ = len(contract.columns)
        enc._positional_input = bool(s.get("positional_input", False))
        if not enc._positional_input:
            enc.feature_names_in_ = np.asarray([c.name for c in contract.columns], dtype=object)
        return enc

    def with_policies(self, **policies: str) -> TableEncoder:
        """A copy of this fitted encoder with other drift policies (the statistics are shared).

        >>> import pyarrow as pa
        >>> enc = TableEncoder().fit(pa.table({"c": ["a", "b"]})).with_policies(on_unseen_level="error")
        >>> enc.transform(pa.table({"c": ["z"]}))
        Traceback (most recent call last):
        ...
        skfleet.errors.DataError: column 'c' has 1 values never seen at fit time (e.g. 'z') (on_unseen_level='error')
        """
        check_is_fitted(self, "contract_")
        new = copy.copy(self)
        new.set_params(**policies)
        new.contract_ = self.contract_.with_policies(**policies)
        return new

    # -- persistence ----------------------------------------------------------------------------

    def __getstate__(self):
        """The fitted state with the contract and profile as JSON text (:mod:`.state`: a skops
        node per column attribute made wide models take minutes to store)."""
        return pack(super().__getstate__())  # pack copies: the state may be our __dict__

    def __setstate__(self, state):
        super().__setstate__(unpack(state))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
