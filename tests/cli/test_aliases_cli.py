"""``skfleet models alias``, ``NAME@champion`` in predict/show/report/diff/delete, and
``skfleet train --promote-if`` through the command line: results, JSON, and bad input."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from skfleet.cli import main
from skfleet.store import ModelStore
from tests.train.data import classification_table, write

DUMMY = "sklearn.dummy.DummyClassifier"
RULE = "roc_auc >= champion + 0.005"


def run(*args: str):
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def one_line_error(code: int, out: str, err: str) -> str:
    assert code == 2, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def files(store: str) -> list[str]:
    model_store = ModelStore(store)
    model_store.fs.invalidate_cache()
    return sorted(model_store.fs.find(model_store.root))


@pytest.fixture
def trained(tmp_path):
    """``late@1`` (a dummy, made champion), ``late@2`` (logistic, promoted), ``late@3`` (a dummy,
    stored but not promoted), trained through the CLI with --promote-if."""
    data = write(classification_table(240), tmp_path)
    store = str(tmp_path / "models")
    common = ("--target", "label", "--key", "id", "--cv", "3", "--name", "late", "--store", store,
              "--no-report", "--promote-if", RULE)  # fmt: skip
    lines = []
    for model in (DUMMY, "logistic"):
        code, out, err = run("train", data, "--model", model, *common)
        assert code == 0, err
        lines.append(out.strip())
    code, out, err = run("train", data, "--model", DUMMY, *common, "--json")
    assert code == 0, err
    return data, store, lines, json.loads(out)


def test_promotion_in_the_result_line_json_and_show(trained):
    data, store, lines, summary = trained
    assert lines[0].startswith("stored late@1: ") and lines[0].endswith(
        "; late@1 is now champion: no champion yet"
    )
    assert (
        "; late@2 is now champion: roc_auc " in lines[1]
        and "(champion late@1: 0.5 + 0.005)" in lines[1]
    )
    promotion = summary["promotion"]
    assert summary["version"] == 3 and not promotion["promoted"]
    assert promotion["champion_version"] == 2 and promotion["new"] < promotion["champion"]
    store_meta = ModelStore(store).metadata("late@3")["promotion"]
    assert store_meta == promotion

    code, out, err = run("models", "show", "late@champion", "--store", store)
    assert code == 0, err
    assert out.startswith("late@2  classification of label")
    assert "aliases     champion" in out and "promotion   made champion: roc_auc" in out
    code, out, err = run("models", "show", "late@3", "--store", store)
    assert "promotion   not made champion: roc_auc" in out and "aliases" not in out
    code, out, err = run("models", "show", "late@champion", "--store", store, "--json")
    assert json.loads(out)["version"] == 2


def test_alias_set_move_list_delete(trained):
    data, store, _, _ = trained
    code, out, err = run("models", "alias", "late@3", "staging", "--store", store)
    assert code == 0 and out.strip() == "late@staging -> late@3", err
    code, out, err = run("models", "alias", "late@1", "staging", "--store", store, "--json")
    assert json.loads(out) == {"name": "late", "alias": "staging", "version": 1, "previous": 3}
    code, out, err = run("models", "list", "--store", store)
    assert code == 0 and "champion@2" in out and "staging@1" in out, out
    code, out, err = run("models", "list", "--store", store, "--json")
    assert json.loads(out)[0]["aliases"] == {"champion": 2, "staging": 1}
    code, out, err = run("models", "diff", "late@staging", "late@champion", "--store", store)
    assert code == 0 and out.splitlines()[0].split() == ["late@1", "late@2", "change"]
    # A version an alias points at is not deleted; the alias goes first.
    before = files(store)
    line = one_line_error(*run("models", "delete", "late@1", "--store", store))
    assert "alias 'staging' points at" in line and files(store) == before
    code, out, err = run("models", "alias", "--delete", "late", "staging", "--store", store)
    assert code == 0 and out.strip() == "deleted late@staging (was late@1)", err
    code, out, err = run("models", "delete", "late@1", "--store", store)
    assert code == 0 and out.strip() == "deleted late@1", err


def test_predict_and_report_at_champion_are_the_version_it_points_at(tmp_path, trained):
    data, store, _, _ = trained
    outs = {}
    for ref in ("late@champion", "late@2", "late@3"):
        out = str(tmp_path / f"{ref.replace('@', '-')}.csv")
        code, stdout, err = run("predict", ref, data, "--store", store, "--out", out,
                                "--engine", "local")  # fmt: skip
        assert code == 0, err
        outs[ref] = pd.read_csv(out).sort_values("id", ignore_index=True)
    pd.testing.assert_frame_equal(outs["late@champion"], outs["late@2"])
    assert not outs["late@champion"].equals(outs["late@3"])

    code, out, err = run("models", "report", "late@champion", "--store", store)
    line = one_line_error(code, out, err)  # --no-report: none stored, for the aliased version
    assert "late@2 has no report.html" in line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("models", "show", "late@prod"), "model 'late' has no alias 'prod'"),
        (("models", "alias", "late@2", "3"), "alias '3' is not allowed"),
        (("models", "alias", "late@2", "latest"), "alias 'latest' is not allowed"),
        (("models", "alias", "late@9", "prod"), "model 'late' has no version 9"),
        (("models", "alias", "--delete", "late@2", "champion"), "alias --delete takes NAME"),
        (("models", "alias", "--delete", "late", "prod"), "has no alias 'prod'"),
        (("models", "report", "late@prod"), "has no alias 'prod'"),
        (("models", "delete", "late@champion"), "delete needs an explicit version"),
    ],
)
def test_bad_alias_input_is_one_line_and_changes_nothing(trained, args, message):
    _, store, _, _ = trained
    before = files(store)
    line = one_line_error(*run(*args, "--store", store))
    assert message in line and files(store) == before


def test_predict_with_an_unknown_alias_writes_nothing(tmp_path, trained):
    data, store, _, _ = trained
    out = tmp_path / "scores.csv"
    line = one_line_error(*run("predict", "late@prod", data, "--store", store, "--out", str(out)))
    assert "has no alias 'prod'" in line and not out.exists()


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("roc_auc >> champion", "--promote-if 'roc_auc >> champion' does not parse"),
        ("rmse <= champion", "this run does not compute 'rmse'"),
        ("roc_auc >= 7", "does not parse"),
    ],
)
def test_a_bad_rule_is_one_line_before_training_and_nothing_stored(trained, rule, message):
    data, store, _, _ = trained
    before = files(store)
    line = one_line_error(
        *run(
            "train",
            data,
            "--model",
            "logistic",
            "--target",
            "label",
            "--key",
            "id",
            "--cv",
            "3",
            "--name",
            "late",
            "--store",
            store,
            "--promote-if",
            rule,
        )  # fmt: skip
    )
    assert message in line and files(store) == before
