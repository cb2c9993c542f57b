"""Trust is given per run: a model this process loaded with ``trust=True`` is not served again,
from its cache, to a run without it — even when ``model.json`` was edited to claim the artifact
needs no trust."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from skfleet.errors import UntrustedModelError
from skfleet.predict import predict
from skfleet.store import ModelStore


def test_a_model_loaded_with_trust_is_not_reused_without_it(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"id": np.arange(60), "a": rng.normal(size=60)})
    frame["city"] = pd.Categorical(rng.choice(["Basel", "Bern"], 60))
    y = (frame["a"] > 0).astype(int)
    # Keeps functools.partial(check_array, ...): a real model that needs trust.
    model = HistGradientBoostingClassifier(max_iter=3, categorical_features="from_dtype")
    model.fit(frame[["a", "city"]], y)
    store = ModelStore(str(tmp_path / "models"))
    ref = store.save(
        "cats", model,
        {"kind": "registered", "task": "classification", "input_columns": ["a", "city"],
         "key_columns": ["id"]},
    )  # fmt: skip
    source = str(tmp_path / "rows.parquet")
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), source)

    trusted = predict("cats", source, str(tmp_path / "a"), store=store.uri, engine="local",
                      trust=True)  # fmt: skip
    assert trusted.rows_out == 60
    with pytest.raises(UntrustedModelError):  # model.json says so
        predict("cats", source, str(tmp_path / "b"), store=store.uri, engine="local")

    # Someone rewrites model.json to claim the artifact needs no trust: the cached model must
    # not be served; the artifact is judged again, and refused.
    meta_path = tmp_path / "models" / "cats" / str(ref.version) / "model.json"
    meta = json.loads(meta_path.read_text())
    meta["artifact"]["untrusted_types"] = []
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(UntrustedModelError):
        predict("cats", source, str(tmp_path / "c"), store=store.uri, engine="local")
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").iterdir())
