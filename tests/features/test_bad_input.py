"""Bad input gets a clear one-line error naming what is wrong, or a documented handling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
import scipy.sparse as sp
from sklearn.exceptions import NotFittedError

from skfleet.errors import DataError, SkfleetError, UsageError
from skfleet.features import (
    EncoderOptions,
    FeatureInputError,
    FeatureParamError,
    FeatureWarning,
    TableEncoder,
)


def test_empty_table_cannot_be_fitted():
    with pytest.raises(FeatureInputError, match=r"empty table \(0 rows, 2 columns\)"):
        TableEncoder().fit(
            pa.table({"a": pa.array([], pa.int64()), "b": pa.array([], pa.string())})
        )
    with pytest.raises(FeatureInputError, match="empty table"):
        TableEncoder().fit(pd.DataFrame({"a": []}))
    with pytest.raises(FeatureInputError, match="no columns"):
        TableEncoder().fit(pa.table({}))


def test_empty_chunks_in_partial_fit_add_nothing_and_empty_tables_transform_to_no_rows():
    enc = TableEncoder().partial_fit(pa.table({"x": pa.array([], pa.float64())}))
    with pytest.raises(NotFittedError):
        enc.transform(pa.table({"x": [1.0]}))
    enc.partial_fit(pa.table({"x": [1.0, 3.0]}))
    out = enc.transform(pa.table({"x": pa.array([], pa.float64())}))
    assert out.shape == (0, 1) and out.dtype == np.float32


def test_all_null_columns_are_excluded_with_a_warning():
    table = pa.table(
        {
            "x": [1.0, 2.0],
            "nothing": pa.nulls(2),
            "nan": [np.nan, np.nan],
            "blank": pa.array([None, None], pa.string()),
        }
    )
    with pytest.warns(FeatureWarning) as caught:
        enc = TableEncoder().fit(table)
    messages = sorted(str(w.message) for w in caught)
    assert messages == [
        f"column '{c}' excluded: no values: every row is missing"
        for c in ("blank", "nan", "nothing")
    ]
    assert enc.contract_.input_columns == ["x"]
    assert enc.transform(pa.table({"x": [3.0]})).shape == (1, 1)  # excluded: not needed


def test_mixed_type_column_from_pandas_is_an_error_naming_it():
    df = pd.DataFrame({"ok": [1, 2, 3], "zip": pd.Series([10001, "K1A 0B6", 2.5], dtype=object)})
    with pytest.raises(
        FeatureInputError, match=r"column 'zip' mixes value types \(float, int, str\)"
    ):
        TableEncoder().fit(df)


def test_mixed_numbers_and_words_from_a_csv_are_text_unless_declared_numeric(tmp_path):
    path = tmp_path / "flights.csv"
    path.write_text("gate,delay\n12,5\n14,7\nB7,3\n12,1\n")
    for table in (pd.read_csv(path), pacsv.read_csv(path)):
        enc = TableEncoder().fit(table)
        # Documented: a column holding any non-number is a string column (here categorical).
        assert enc.contract_.column("gate").kind == "categorical"
        assert enc.contract_.column("gate").levels == ["12", "14", "B7"]
        with pytest.raises(DataError, match="column 'gate': cannot read 'B7' as a number"):
            TableEncoder(numeric=["gate"]).fit(table)


def test_nan_and_inf_at_fit_time_are_missing_values():
    table = pa.table({"x": [1.0, np.nan, np.inf, 3.0, -np.inf]})
    enc = TableEncoder().fit(table)
    spec = enc.contract_.column("x")
    assert spec.n_missing == 3 and spec.indicator
    assert spec.center == 2.0 and spec.scale == 1.0 and spec.fill_value == 2.0
    out = enc.transform(table)
    assert np.isfinite(out).all()
    assert out[:, 1].tolist() == [0, 1, 1, 0, 1]


def test_target_among_the_features_is_an_error_naming_it():
    df = pd.DataFrame({"distance": [100, 200, 300], "arr_delay": [1.0, 2.0, 3.0]})
    with pytest.raises(
        UsageError, match=r"column 'arr_delay' is the target \(y\) and also a feature"
    ):
        TableEncoder().fit(df, df["arr_delay"])
    with pytest.raises(UsageError, match=r"'arr_delay' is the target \(target=\)"):
        TableEncoder(target="arr_delay").fit(df)
    enc = TableEncoder(target="arr_delay", exclude=["arr_delay"]).fit(df, df["arr_delay"])
    assert enc.contract_.input_columns == ["distance"] and enc.contract_.target == "arr_delay"
    # An unnamed y or a y that is not a column is fine.
    TableEncoder().fit(df[["distance"]], df["arr_delay"])
    TableEncoder().fit(df, df["arr_delay"].to_numpy())


@pytest.mark.parametrize(
    ("X", "message"),
    [
        (sp.csr_matrix(np.eye(3)), "sparse input is not supported"),
        (np.arange(3.0), "expected a 2-D table"),
        (pa.array([1, 2]), "got a single column"),
        (pd.DataFrame([[1, 2]], columns=["a", "a"]), "column 'a' appears more than once"),
        (pd.DataFrame([[1, 2]], columns=["a", 0]), "column labels mix strings"),
        (np.array([[1 + 2j]]), "Complex data not supported"),
    ],
)
def test_unusable_inputs_are_refused(X, message):
    with pytest.raises(FeatureInputError, match=message) as info:
        TableEncoder().fit(X)
    assert isinstance(info.value, SkfleetError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"max_levels": 0}, "max_levels must be a positive integer"),
        ({"hash_features": "many"}, "hash_features must be a positive integer"),
        ({"sparse": "yes"}, "sparse must be 'auto', True or False"),
        ({"on_unseen_level": "ignore"}, "on_unseen_level must be one of"),
        ({"categorical": [1]}, "categorical= must hold column names"),
        ({"options": {"max_distinct": 3}}, "options must be an EncoderOptions"),
        ({"options": EncoderOptions(max_distinct=0)}, "options.max_distinct must be a positive"),
        ({"target": 3}, "target must be a column name"),
    ],
)
def test_bad_parameters_are_refused_naming_them(params, message):
    with pytest.raises(FeatureParamError, match=message):
        TableEncoder(**params).fit(pa.table({"a": [1.0]}))


def test_positional_input_must_keep_its_width():
    enc = TableEncoder().fit(np.ones((3, 4)))
    with pytest.raises(
        FeatureInputError, match="X has 3 features, but TableEncoder is expecting 4"
    ):
        enc.transform(np.ones((2, 3)))
    with pytest.raises(FeatureInputError, match="X has 5 features"):
        enc.partial_fit(np.ones((2, 5)))


def test_unsupported_column_types_are_excluded_with_a_warning():
    table = pa.table({"x": [1.0, 2.0], "tags": pa.array([["a"], ["b", "c"]])})
    with pytest.warns(FeatureWarning, match="'tags' excluded: unsupported type list<item: string>"):
        enc = TableEncoder().fit(table)
    assert enc.contract_.input_columns == ["x"]


def test_chunks_with_conflicting_types_are_an_error_naming_the_column():
    enc = TableEncoder().partial_fit(pa.table({"zip": ["10001"]}))
    with pytest.raises(DataError, match="column 'zip' holds string values .* int64"):
        enc.partial_fit(pa.table({"zip": [10001]}))
    # The failed chunk left the encoder as it was.
    assert enc.profile_.n_rows == 1
