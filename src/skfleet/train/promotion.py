"""Gated promotion: ``--promote-if 'roc_auc >= champion + 0.005'`` moves an alias to a new version
only if it beats the version the alias points at, both judged on the same folds of the new data.

A rule is ``METRIC OP ALIAS [+|- DELTA]``: ``OP`` is one of ``>=``, ``>``, ``<=``, ``<``; ``ALIAS``
names the alias compared with and moved (usually ``champion``); ``METRIC`` is one the run
computes on every fold: ``accuracy``, and with class probabilities ``roc_auc``, ``log_loss``,
``brier`` for a classifier; ``r2``, ``rmse``, ``mae`` for a regressor. A loss reads naturally with
``<=`` (``log_loss <= champion - 0.01``). The rule is read by a small grammar, never evaluated.

The new version is always stored. The champion is refitted from its stored pipeline (unfitted with
``sklearn.base.clone``, its table step included, so it learns its own contract from the rows of
each fold) on the run's folds, on the run's engine, and the mean fold metric of each is compared.
With no champion yet, the new version becomes it. ``model.json`` of the new version records
``promotion: {rule, metric, alias, new, champion, champion_version, promoted, reason}``.

>>> rule = parse_rule("roc_auc >= champion + 0.005")
>>> rule
PromotionRule(metric='roc_auc', op='>=', alias='champion', delta=0.005)
>>> rule.passes(0.91, 0.90), rule.passes(0.904, 0.90)
(True, False)
>>> parse_rule("log_loss<=champion-0.01").threshold(0.5)
0.49
>>> parse_rule("roc_auc => champion")
Traceback (most recent call last):
...
skfleet.errors.UsageError: --promote-if 'roc_auc => champion' does not parse: write METRIC OP ALIAS [+|- NUMBER] with OP one of >=, >, <=, <, e.g. 'roc_auc >= champion + 0.005'
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from skfleet.errors import ModelNotFoundError, SkfleetError, UsageError
from skfleet.store.refs import validate_alias

_OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}
# The alias is matched lazily so that 'champion-0.01' reads as champion minus 0.01.
_RULE = re.compile(
    r"\s*(?P<metric>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op>>=|<=|>|<)\s*"
    r"(?P<alias>[A-Za-z][A-Za-z0-9_.-]*?)\s*"
    r"(?:(?P<sign>[+-])\s*(?P<delta>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?))?\s*\Z"
)
#: Metrics every fold of a run computes, by task; the probability ones need predict_proba.
CLASSIFICATION_METRICS = ("accuracy", "roc_auc", "log_loss", "brier")
PROBABILITY_METRICS = ("roc_auc", "log_loss", "brier")
REGRESSION_METRICS = ("r2", "rmse", "mae")
#: Model kinds whose stored pipeline can be refitted on a table.
_REFITTABLE = ("batch", "segmented")


@dataclass(frozen=True)
class PromotionRule:
    """``metric op alias + delta``, parsed."""

    metric: str
    op: str
    alias: str
    delta: float = 0.0

    def threshold(self, champion: float) -> float:
        return round(champion + self.delta, 12)

    def passes(self, new: float, champion: float) -> bool:
        return bool(_OPS[self.op](new, self.threshold(champion)))

    def __str__(self) -> str:
        tail = f" {'+' if self.delta >= 0 else '-'} {abs(self.delta):g}" if self.delta else ""
        return f"{self.metric} {self.op} {self.alias}{tail}"


def parse_rule(text: Any) -> PromotionRule:
    """Read ``METRIC OP ALIAS [+|- DELTA]``; anything else is one line naming the rule."""
    match = _RULE.match(text) if isinstance(text, str) else None
    if match is None:
        raise UsageError(
            f"--promote-if {text!r} does not parse: write METRIC OP ALIAS [+|- NUMBER] with OP "
            "one of >=, >, <=, <, e.g. 'roc_auc >= champion + 0.005'"
        )
    try:
        validate_alias(match["alias"])
    except UsageError as exc:
        raise UsageError(f"--promote-if {text!r}: {exc}") from None
    delta = float(match["delta"]) if match["delta"] else 0.0
    return PromotionRule(
        match["metric"], match["op"], match["alias"], -delta if match["sign"] == "-" else delta
    )


def run_metrics(task: str, template: Any) -> tuple[str, ...]:
    """The metrics a run of ``template`` computes on every fold."""
    if task == "regression":
        return REGRESSION_METRICS
    if hasattr(template, "predict_proba"):
        return CLASSIFICATION_METRICS
    return tuple(m for m in CLASSIFICATION_METRICS if m not in PROBABILITY_METRICS)


def fold_mean(folds: list[dict[str, Any]], metric: str) -> float | None:
    """The mean of ``metric`` over the folds where it is defined (None if it is nowhere).

    >>> fold_mean([{"r2": 0.5}, {"r2": 0.7}, {"r2": None}], "r2")
    0.6
    """
    values = [f[metric] for f in folds if isinstance(f.get(metric), int | float)]
    return round(float(np.mean(values)), 12) if values else None


class Promotion:
    """One run's promotion: checked before training, the champion evaluated on the run's
    folds, the decision recorded in ``model.json`` and the alias moved after the save."""

    def __init__(self, rule: PromotionRule, text: str, name: str, champion: Any = None):
        self.rule, self.text, self.name = rule, text, name
        #: The champion as loaded (a LoadedModel), or None when the alias is not set yet.
        self.champion = champion
        self.champion_score: float | None = None
        self.champion_error: str | None = None

    @classmethod
    def prepare(
        cls, text: Any, model_store: Any, name: str | None, task: str, template: Any, config: Any
    ) -> Promotion | None:
        """Check the rule and load the champion before anything is trained (None: no rule)."""
        if text is None:
            return None
        rule = parse_rule(text)
        computed = run_metrics(task, template)
        if rule.metric not in computed:
            raise UsageError(
                f"--promote-if {text!r}: this run does not compute {rule.metric!r} "
                f"(it computes {', '.join(computed)})"
            )
        if model_store is None or name is None:
            raise UsageError("--promote-if needs a stored model: give the run a name")
        if config.cv.folds < 2:
            raise UsageError("--promote-if compares fold metrics: use --cv 2 or more")
        champion = None
        if model_store.versions(name):
            try:
                ref = model_store.resolve(f"{name}@{rule.alias}")
            except ModelNotFoundError:
                if rule.alias in model_store.aliases(name):
                    raise  # set, but pointing at a version that is gone: say so
                ref = None
            if ref is not None:
                champion = _load_champion(model_store, ref, task, config)
        return cls(rule, str(text), name, champion)

    def champion_inputs(self, features: Any) -> Any:
        """The columns of the run's table the champion reads, as it was trained to."""
        wanted = list(self.champion.metadata.get("input_columns") or [])
        missing = [c for c in wanted if c not in features.column_names]
        if missing:
            raise UsageError(
                f"--promote-if: champion {self.champion.ref} needs column {missing[0]!r}, which "
                "this run does not read (check --exclude and the table)"
            )
        return features if wanted == features.column_names else features.select(wanted)

    def evaluate(self, data: Any, splits: list, classes: Any, task: str, jobs: dict, progress):
        """Fit clones of the champion on the run's folds (inside the run's engine context)."""
        if self.champion is None:
            return
        from sklearn.base import clone

        from skfleet.train.cv import cross_validate
        from skfleet.train.fitting import fit_phase, sklearn_call
        from skfleet.train.parallel import counting_fits

        X = self.champion_inputs(data.features)
        template = clone(self.champion.model)
        weighted: dict[str, Any] = {}
        if getattr(data, "weight", None) is not None:
            # A weighted run's metrics are weighted: the champion is fitted and scored alike.
            from skfleet.train.weights import accepts_weights, weight_key

            if not accepts_weights(template):
                self.champion_error = "its estimator takes no sample_weight (--weight)"
                return
            weighted = {"weight": data.weight, "weight_key": weight_key(template)}
        label = f"champion {self.champion.ref} on the same folds"
        try:
            phase = fit_phase(progress, label, len(splits), data.rows)
            with phase as listener, counting_fits(listener):
                result = sklearn_call(
                    cross_validate, template, X, data.y, splits, task, classes, **jobs, **weighted
                )
        except SkfleetError as exc:
            # The new version is stored either way; a champion that cannot learn from this
            # data is not beaten by a comparison, so nothing is promoted and the reason is kept.
            self.champion_error = str(exc)
            return
        self.champion_score = fold_mean(result.folds, self.rule.metric)

    def record(self, cv_folds: list[dict[str, Any]], model_store: Any) -> dict[str, Any]:
        """The ``promotion`` field of the new version's ``model.json``."""
        rule, new = self.rule, fold_mean(cv_folds, self.rule.metric)
        champion_ref = self.champion.ref if self.champion is not None else None
        out = {
            "rule": self.text,
            "metric": rule.metric,
            "alias": rule.alias,
            "new": new,
            "champion": self.champion_score,
            "champion_version": champion_ref.version if champion_ref else None,
        }
        now = model_store.aliases(self.name).get(rule.alias)
        if champion_ref is None and now is None:
            return {**out, "promoted": True, "reason": f"no {rule.alias} yet"}
        if champion_ref is None or now != champion_ref.version:
            # Another run moved the alias while this one trained: it was not the comparison made.
            moved = f"moved to {self.name}@{now}" if now else "was deleted"
            return {**out, "promoted": False, "reason": f"{rule.alias} {moved} meanwhile"}
        if self.champion_error is not None:
            reason = f"{rule.alias} {champion_ref} could not be refitted: {self.champion_error}"
            return {**out, "promoted": False, "reason": reason}
        if new is None or self.champion_score is None:
            reason = f"{rule.metric} is undefined on every fold"
            return {**out, "promoted": False, "reason": reason}
        promoted = rule.passes(new, self.champion_score)
        relation = rule.op if promoted else f"is not {rule.op}"
        reason = (
            f"{rule.metric} {new:.4g} {relation} {rule.threshold(self.champion_score):.4g} "
            f"({rule.alias} {champion_ref}: {self.champion_score:.4g}"
            + (f" {'+' if rule.delta >= 0 else '-'} {abs(rule.delta):g})" if rule.delta else ")")
        )
        return {**out, "promoted": promoted, "reason": reason}

    @staticmethod
    def apply(record: dict[str, Any], model_store: Any, ref: Any) -> None:
        """Move the alias to the stored version when the record says so (one write)."""
        if record["promoted"]:
            model_store.set_alias(ref, record["alias"])


def _load_champion(model_store: Any, ref: Any, task: str, config: Any) -> Any:
    meta = model_store.metadata(ref)
    kind = meta.get("kind")
    if kind not in _REFITTABLE:
        raise UsageError(
            f"--promote-if: champion {ref} is a {kind} model, which cannot be refitted on this "
            f"run's folds; move the alias by hand (skfleet models alias {ref.name}@VERSION ...)"
        )
    for field, value in (("task", task), ("target", config.target)):
        if meta.get(field) != value:
            raise UsageError(
                f"--promote-if: champion {ref} has {field} {meta.get(field)!r}, this run "
                f"{value!r}: they cannot be compared"
            )
    return model_store.load(ref)


def promotion_text(record: dict[str, Any] | None, ref: Any) -> str:
    """The decision in a few words, for the CLI's result line.

    >>> promotion_text({"promoted": False, "alias": "champion", "reason": "r2 0.5 is not >= 0.6",
    ...                 "champion_version": 2}, "m@3")
    'champion stays m@2: r2 0.5 is not >= 0.6'
    """
    if not record:
        return ""
    if record["promoted"]:
        return f"{ref} is now {record['alias']}: {record['reason']}"
    name = str(ref).partition("@")[0]
    stays = f"stays {name}@{record['champion_version']}" if record["champion_version"] else "unset"
    return f"{record['alias']} {stays}: {record['reason']}"
