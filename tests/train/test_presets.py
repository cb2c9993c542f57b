"""Presets and the --model / --param / --grid parsing."""

from __future__ import annotations

import pytest

from skfleet.cli.train_stream import train_stream
from skfleet.errors import UsageError
from skfleet.train.presets import (
    PRESETS,
    build_estimator,
    parse_grid,
    parse_grids,
    parse_params,
    preset_names,
    resolve_model,
)
from skfleet.train.stream.estimators import resolve_estimator, task_of


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_builds_the_task_it_declares(name):
    preset = PRESETS[name]
    estimator = preset.build()
    assert task_of(estimator) == preset.task, name
    assert hasattr(estimator, "partial_fit") == preset.incremental
    for key, value in preset.params.items():
        assert estimator.get_params()[key] == value


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_train_takes_only_the_presets_it_lists(name):
    if "train" in PRESETS[name].commands:
        assert type(resolve_model(name)) is type(PRESETS[name].build())
    else:
        with pytest.raises(UsageError, match=f"unknown --model '{name}': not a preset"):
            resolve_model(name)


def test_stream_presets_are_incremental():
    names = preset_names("train-stream")
    assert {"sgd-logistic", "sgd-linear", "perceptron", "minibatch-kmeans"} <= set(names)
    for name in names:
        assert PRESETS[name].incremental
        assert hasattr(resolve_estimator(name), "partial_fit")
    # `skfleet train-stream --help` names the same presets, in the table's order.
    (model,) = [p for p in train_stream.params if p.name == "model"]
    assert f"a preset ({', '.join(names)})" in model.help


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
