"""``train(..., promote_if=...)``: the champion refitted on the run's folds, the decision recorded,
the alias moved only for a better version; bad rules refused before anything is trained."""

from __future__ import annotations

import pytest

from skfleet.errors import ModelNotFoundError, UsageError
from skfleet.store import ModelStore
from skfleet.train import train
from skfleet.train.promotion import Promotion, fold_mean
from tests.train.data import classification_table, regression_table

DUMMY = "sklearn.dummy.DummyClassifier"
RULE = "roc_auc >= champion + 0.005"


def _train(model, table, store, rule=RULE, **options):
    options = {"target": "label", "keys": ["id"], "cv": 3, "report": False, **options}
    return train(model, table, name="late", store=store, promote_if=rule, **options)


def _files(store: ModelStore) -> list[str]:
    store.fs.invalidate_cache()
    try:
        return sorted(store.fs.find(store.root))
    except FileNotFoundError:
        return []


def test_first_better_and_worse_versions(tmp_path):
    store = ModelStore(str(tmp_path / "models"))
    table = classification_table(300)
    first = _train(DUMMY, table, store.uri)
    assert first.metadata["promotion"] == {
        "rule": RULE,
        "metric": "roc_auc",
        "alias": "champion",
        "new": fold_mean(first.metrics["folds"], "roc_auc"),
        "champion": None,
        "champion_version": None,
        "promoted": True,
        "reason": "no champion yet",
    }
    assert store.aliases("late") == {"champion": 1}

    better = _train("logistic", table, store.uri)
    record = better.metadata["promotion"]
    # Same data, same folds: the refitted champion scores what it scored when it was trained.
    assert record["champion"] == pytest.approx(fold_mean(first.metrics["folds"], "roc_auc"))
    assert record["new"] > record["champion"] + 0.005
    assert record["promoted"] and record["champion_version"] == 1
    assert store.aliases("late") == {"champion": 2}
    assert better.to_dict()["promotion"] == record

    worse = _train(DUMMY, table, store.uri)
    record = worse.metadata["promotion"]
    assert worse.version == 3 and store.versions("late") == [1, 2, 3]  # stored anyway
    assert not record["promoted"] and record["champion_version"] == 2
    assert record["champion"] == pytest.approx(fold_mean(better.metrics["folds"], "roc_auc"))
    assert "is not >=" in record["reason"] and "late@2" in record["reason"]
    assert store.aliases("late") == {"champion": 2}
    assert store.metadata("late@3")["promotion"] == record
    assert store.resolve("late@champion").version == 2


def test_champion_is_refitted_on_the_new_data_and_its_folds(tmp_path):
    """On new data the champion's figure is its own CV on that data's folds, not its old one."""
    store = ModelStore(str(tmp_path / "models"))
    _train("logistic", classification_table(300), store.uri, params={"C": 0.01})
    new_table = classification_table(240, seed=7)
    result = _train("logistic", new_table, store.uri, rule="log_loss <= champion - 0.001")
    record = result.metadata["promotion"]
    alone = train(
        "logistic", new_table, target="label", keys=["id"], cv=3, report=False, params={"C": 0.01}
    )
    assert record["champion"] == pytest.approx(fold_mean(alone.metrics["folds"], "log_loss"))
    assert record["new"] == pytest.approx(fold_mean(result.metrics["folds"], "log_loss"))
    assert record["promoted"] == (record["new"] <= record["champion"] - 0.001)


def test_the_champion_reads_only_its_own_columns_and_regressors(tmp_path):
    store = ModelStore(str(tmp_path / "models"))
    table = regression_table(200)
    options = {"target": "y", "keys": ["id"], "cv": 3, "report": False}
    train("ridge", table, name="y", store=store.uri, exclude=["shop"], **options)
    store.set_alias("y@1", "prod")
    result = train("ridge", table, name="y", store=store.uri, promote_if="rmse < prod", **options)
    alone = train("ridge", table, exclude=["shop"], **options)
    record = result.metadata["promotion"]
    assert record["champion"] == pytest.approx(fold_mean(alone.metrics["folds"], "rmse"))
    assert record["promoted"] and store.aliases("y") == {"prod": 2}  # shop matters


def test_dask_decision_equals_in_process(tmp_path, dask_engine):
    table = classification_table(300, seed=3)
    records = []
    for engine in ("local", dask_engine):
        store = str(tmp_path / f"models-{len(records)}")
        _train("logistic", table, store, params={"C": 0.01})
        records.append(_train("logistic", table, store, engine=engine).metadata["promotion"])
    here, there = records
    assert there["champion"] == pytest.approx(here["champion"], rel=1e-12)
    assert there["new"] == pytest.approx(here["new"], rel=1e-12)
    assert there["promoted"] == here["promoted"]


@pytest.mark.parametrize(
    ("model", "rule", "options", "message"),
    [
        ("logistic", "roc_auc => champion", {}, "does not parse"),
        ("logistic", "roc_auc >= champion +", {}, "does not parse"),
        ("logistic", "roc_auc >= champion * 2", {}, "does not parse"),
        ("logistic", "__import__('os') >= champion", {}, "does not parse"),
        ("logistic", "roc_auc >= latest", {}, "alias 'latest' is not allowed"),
        ("logistic", "r2 >= champion", {}, "does not compute 'r2' (it computes accuracy, roc_auc"),
        ("sklearn.svm.LinearSVC", "roc_auc >= champion", {}, "it computes accuracy)"),
        ("logistic", RULE, {"cv": 0}, "use --cv 2 or more"),
    ],
)
def test_bad_rules_are_refused_before_anything_is_trained(tmp_path, model, rule, options, message):
    store = ModelStore(str(tmp_path / "models"))
    _train("logistic", classification_table(120), store.uri)
    before = _files(store)
    with pytest.raises(UsageError, match="--promote-if") as info:
        _train(model, classification_table(120), store.uri, rule=rule, **options)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert _files(store) == before


def test_champions_that_cannot_be_compared_are_refused_before_training(tmp_path):
    store = ModelStore(str(tmp_path / "models"))
    table = classification_table(120)
    _train("logistic", table, store.uri)
    before = _files(store)
    with pytest.raises(UsageError, match="champion late@1 needs column 'city'"):
        _train("logistic", table, store.uri, exclude=["city"])
    renamed = table.rename_columns(["id", "x", "z", "city", "delayed"])
    with pytest.raises(UsageError, match="champion late@1 has target 'label', this run 'delayed'"):
        _train("logistic", renamed, store.uri, target="delayed")
    # An alias pointing at a version that is gone is named, not taken for "no champion".
    train(
        "logistic",
        table,
        target="label",
        keys=["id"],
        cv=3,
        report=False,
        name="late",
        store=store.uri,
    )
    store.fs.rm(store._path("late", "1"), recursive=True)  # version 2 remains
    before = _files(store)
    with pytest.raises(ModelNotFoundError, match="points at version 1"):
        _train("logistic", table, store.uri)
    assert _files(store) == before


def test_api_needs_a_name(tmp_path):
    with pytest.raises(UsageError, match="needs a stored model"):
        train("logistic", classification_table(60), target="label", cv=3, promote_if=RULE)


def test_on_an_s3_store_a_worse_version_is_stored_but_not_promoted(s3_new_prefix):
    store = ModelStore(s3_new_prefix)
    table = classification_table(200)
    _train("logistic", table, store.uri)
    worse = _train(DUMMY, table, store.uri)
    assert worse.version == 2 and not worse.metadata["promotion"]["promoted"]
    assert store.aliases("late") == {"champion": 1}
    assert store.metadata("late@2")["promotion"] == worse.metadata["promotion"]


def test_an_alias_moved_while_the_run_trained_is_not_overwritten(tmp_path):
    from skfleet.train.config import TrainConfig

    store = ModelStore(str(tmp_path / "models"))
    table = classification_table(120)
    first = _train("logistic", table, store.uri)
    _train(DUMMY, table, store.uri)  # late@2, not promoted
    config = TrainConfig.build(None, target="label", cv=3)
    promotion = Promotion.prepare(RULE, store, "late", "classification", first.model, config)
    assert promotion.champion.ref.version == 1
    store.set_alias("late@2", "champion")  # another run (or a person) moves it meanwhile
    promotion.champion_score = 0.0
    record = promotion.record(first.metrics["folds"], store)
    assert not record["promoted"] and record["reason"] == "champion moved to late@2 meanwhile"
