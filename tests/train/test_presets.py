"""Presets and the --model / --param / --grid parsing."""

from __future__ import annotations

import pytest
from sklearn.base import is_classifier, is_regressor

from skfleet.errors import UsageError
from skfleet.presets import (
    PRESETS,
    build_estimator,
    parse_grid,
    parse_grids,
    parse_params,
    resolve_model,
)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_builds_the_task_it_declares(name):
    preset = PRESETS[name]
    estimator = resolve_model(name)
    check = is_classifier if preset.task == "classification" else is_regressor
    assert check(estimator), name
    assert hasattr(estimator, "partial_fit") == preset.incremental
    for key, value in preset.params.items():
        assert estimator.get_params()[key] == value


def test_stream_presets_are_incremental():
    for name in ("sgd-logistic", "sgd-linear"):
        assert PRESETS[name].incremental
        assert hasattr(resolve_model(name), "partial_fit")


def test_presets_return_fresh_objects():
    first, second = resolve_model("logistic"), resolve_model("logistic")
    first.set_params(C=5.0)
    assert second.C == 1.0


def test_import_path_and_estimator_object():
    assert type(resolve_model("sklearn.ensemble.HistGradientBoostingClassifier")).__name__ == (
        "HistGradientBoostingClassifier"
    )
    from sklearn.linear_model import Ridge

    ridge = Ridge(alpha=3.0)
    assert build_estimator(ridge, {"alpha": 2.0}) is ridge and ridge.alpha == 2.0


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("gbm", "unknown --model 'gbm': not a preset"),
        ("sklearn.linear_model.Nope", "sklearn.linear_model has no Nope"),
        ("nosuchpkg.Model", "no module nosuchpkg"),
        ("os.path", "is not a scikit-learn estimator class"),
        ("skfleet.errors.UsageError", "is not a scikit-learn estimator class"),
    ],
)
def test_unknown_models(model, message):
    with pytest.raises(UsageError, match=message):
        resolve_model(model)


def test_params_are_checked_and_typed():
    estimator = build_estimator(
        "hgb-classifier",
        parse_params(["max_depth=3", "learning_rate=0.05", "early_stopping=false", "max_bins=255"]),
    )
    assert estimator.max_depth == 3 and estimator.learning_rate == 0.05
    assert estimator.early_stopping is False
    with pytest.raises(UsageError, match="--param max_dpth: HistGradientBoostingClassifier has no"):
        build_estimator("hgb-classifier", {"max_dpth": 3})
    with pytest.raises(UsageError, match="--param 'depth' must look like NAME=VALUE"):
        parse_params(["depth"])
    with pytest.raises(UsageError, match="--param C is given more than once"):
        parse_params(["C=1", "C=2"])


def test_grid_parsing():
    assert parse_grids(["C=0.1,1", "penalty=l2,null"]) == {"C": [0.1, 1], "penalty": ["l2", None]}
    assert parse_grid('class_weight=balanced,{"a": 1, "b": 2}') == (
        "class_weight",
        ["balanced", {"a": 1, "b": 2}],
    )
    for bad in ("C", "C=", "C=1,,2", "=1,2"):
        with pytest.raises(UsageError, match="--grid"):
            parse_grid(bad)
    with pytest.raises(UsageError, match="--grid C is given more than once"):
        parse_grids(["C=1", "C=2"])
