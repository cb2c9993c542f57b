"""``TableFrame``: the contract of a table without the encoding, for a model that encodes itself.

A user's own Pipeline often starts with a ``ColumnTransformer`` that selects columns by name; it
needs a pandas DataFrame, not the float32 matrix :class:`~skfleet.features.TableEncoder` makes.
``TableFrame`` learns the same :class:`~skfleet.features.FeatureContract` (types, levels seen,
missing values, drift policies) from the same statistics, and its ``transform`` checks a table
against it, as the encoder does, but hands the columns on as a DataFrame:

- every column seen at fit time is required and kept, including those the encoder would have
  set aside as ids or empty (the user's Pipeline decides what it uses), in the fit order;
- a column whose type drifted is converted to the contract's type (or refused, by the policy);
  numbers arrive as float64, as the encoder reads them;
- unseen levels are counted, or refused with ``on_unseen_level="error"``, but not replaced:
  the user's encoder has its own ``handle_unknown``.

>>> import pyarrow as pa
>>> train = pa.table({"cut": ["Good", "Ideal", "Good"], "carat": [0.3, 1.1, 0.7]})
>>> frame = TableFrame().fit(train)
>>> frame.transform(pa.table({"carat": [0.5], "cut": ["Fair"]}))
    cut  carat
0  Fair    0.5
>>> frame.get_feature_names_out().tolist(), frame.contract_.column("cut").levels
(['cut', 'carat'], ['Good', 'Ideal'])
>>> _, drift = frame.transform_with_drift(pa.table({"carat": [2], "cut": ["Fair"]}))
>>> drift.unseen_levels, drift.coerced
({'cut': 1}, {'carat': {'int64 -> double': 1}})
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sklearn.utils.validation import check_is_fitted

from skfleet.errors import DataError, MissingColumnError
from skfleet.features.coerce import decoded
from skfleet.features.drift import N_EXAMPLES, UNSEEN_PASSED, DriftReport
from skfleet.features.dtypes import type_from_str
from skfleet.features.encode import _conform, _missing
from skfleet.features.encoder import TableEncoder
from skfleet.features.errors import FeatureInputError
from skfleet.features.tables import as_input_table


class TableFrame(TableEncoder):
    """A :class:`TableEncoder` whose output is the checked table as a pandas DataFrame.

    Same parameters and fitted attributes as the encoder; ``exclude=`` drops a column from the
    output (and from what is required) as it does from the encoder's features.
    """

    def fit(self, X, y=None):
        """Learn the contract from ``X``, quietly: no column is set aside from the output, so the
        encoder's warnings about excluded ids and empty columns would be wrong here."""
        self._reset()
        table = as_input_table(X)
        if table.n_rows == 0:
            raise FeatureInputError(
                f"cannot fit on an empty table (0 rows, {len(table.names)} columns)"
            )
        return self._learn(table, y)

    @property
    def output_columns(self) -> list[str]:
        """The columns ``transform`` returns and requires, in fit order."""
        check_is_fitted(self, "contract_")
        dropped = set(self.exclude if not isinstance(self.exclude, str) else [self.exclude])
        order = getattr(self, "feature_names_in_", None)  # absent for positional input
        names = order if order is not None else [c.name for c in self.contract_.columns]
        return [str(name) for name in names if name not in dropped]

    def transform_with_drift(self, X):
        """``(DataFrame of the output columns, DriftReport)``; error policies raise."""
        check_is_fitted(self, "contract_")
        table = as_input_table(X)
        self._check_width(table)
        contract = self.contract_
        wanted = self.output_columns
        report = DriftReport(n_rows=table.n_rows, unseen_as=UNSEEN_PASSED)
        report.extra_columns = sorted(c for c in table.names if c not in set(wanted))
        missing = [c for c in wanted if c not in table.columns]
        if missing and contract.on_missing_column == "error":
            raise MissingColumnError(
                f"column {missing[0]!r} is missing from the table; the model's columns are "
                f"{', '.join(wanted)}"
            )
        arrays, required_missing = [], np.zeros(table.n_rows, dtype=bool)
        for spec in (contract.column(name) for name in wanted):
            declared = type_from_str(spec.arrow_type)
            if spec.name in table.columns:
                values = table.columns[spec.name]
            else:
                values = pa.chunked_array([pa.nulls(table.n_rows, declared)], declared)
                report.missing_columns[spec.name] = table.n_rows
            if spec.kind == "excluded":
                values = decoded(values)
            else:
                target = type_from_str(spec.parsed_type or spec.arrow_type)
                values = _conform(values, spec, target, contract, report)
            if spec.levels is not None:
                _count_unseen(spec, values, report, contract.on_unseen_level)
            if spec.n_missing == 0 and spec.name in table.columns and spec.kind != "excluded":
                miss = _missing(values)
                if miss.any():
                    report.missing_values[spec.name] = int(miss.sum())
                    required_missing |= miss
            arrays.append(values)
        report.rows_with_missing = int(required_missing.sum())
        frame = pa.Table.from_arrays(arrays, names=wanted).to_pandas()
        return frame, report

    def get_feature_names_out(self, input_features=None):
        """The output columns: the input columns, not encoded features."""
        return np.asarray(self.output_columns, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = []
        return tags


def _count_unseen(spec, values, report: DriftReport, policy: str) -> None:
    known = pa.array(list(spec.levels) + list(spec.other_levels or []), type=values.type)
    unseen = pc.and_(pc.invert(pc.is_in(values, value_set=known)), pc.is_valid(values))
    count = int(pc.sum(unseen).as_py() or 0)
    if not count:
        return
    examples = sorted(str(v) for v in pc.unique(values.filter(unseen)).to_pylist())[:N_EXAMPLES]
    if policy == "error":
        shown = ", ".join(repr(e) for e in examples)
        raise DataError(
            f"column {spec.name!r} has {count:,} values never seen at fit time (e.g. {shown}) "
            "(on_unseen_level='error')"
        )
    report.add_unseen(spec.name, count, examples)
