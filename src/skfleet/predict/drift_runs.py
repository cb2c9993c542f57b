"""Drift over runs: each scored run's profile against its model version's training profile.

Every committed prediction run of a model trained by skfleet keeps, in its run record
(``profile``), the counts of the rows it scored in the bins of the model's training profile
(``model.json`` ``profile``; see :mod:`skfleet.features.run_profile`). :func:`drift` reads the
last runs of a model and gives, per run and input column, the population stability index (PSI)
against training and the change in the missing rate, and flags the columns whose PSI is above a
threshold: by default 0.2, inside the common rule of thumb's "some shift" band (below 0.1: no
real change; 0.1 to 0.25: some; above 0.25: a major shift).

``NAME`` takes the runs of every version of the model, each compared with its own version's
training profile; ``NAME@V`` (or an alias) those of one version. Only committed runs count: a run
that failed or was interrupted scored a part of its table.

This module imports neither pyarrow nor scikit-learn at import time: the client of a prediction
run plans with :func:`scoring_bins` from ``model.json`` alone.

>>> scoring_bins({"profile": {"columns": {"x": {"kind": "numeric", "edges": [0.5],
...                                             "counts": [3, 4], "n_missing": 0}}}})
{'columns': {'x': {'kind': 'numeric', 'edges': [0.5]}}}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from skfleet.errors import UsageError
from skfleet.util.choices import DRIFT_RUNS, DRIFT_THRESHOLD, check_drift_options


def scoring_bins(metadata: Mapping[str, Any]) -> dict[str, Any] | None:
    """What a scoring task needs to profile its rows, from a ``model.json``: the bins of its
    ``profile`` (without the training counts), or for a model stored before profiles were
    recorded, the levels of its feature contract (numbers are then counted, not binned). None for
    a model without either (registered from outside).

    >>> scoring_bins({"features": {"columns": [{"name": "x", "kind": "numeric"},
    ...     {"name": "c", "kind": "categorical", "levels": ["a"]}]}})
    {'columns': {'x': {'kind': 'numeric', 'edges': []}, 'c': {'kind': 'levels', 'levels': ['a']}}}
    >>> scoring_bins({"kind": "registered"}) is None
    True
    """
    reference = metadata.get("profile")
    if isinstance(reference, Mapping) and isinstance(reference.get("columns"), Mapping):
        keep = ("kind", "edges", "levels", "parsed_type")
        columns = {
            name: {k: v for k, v in spec.items() if k in keep}
            for name, spec in reference["columns"].items()
        }
        return {"columns": columns}
    contract = metadata.get("features")
    if not isinstance(contract, Mapping):
        return None
    columns = {}
    for spec in contract.get("columns") or []:
        kind = spec.get("kind")
        if kind == "excluded":
            continue
        entry: dict[str, Any] = {"kind": "missing"}
        if kind in ("numeric", "datetime"):
            entry = {"kind": "numeric", "edges": []}  # one bucket: values seen, and moments
        elif kind == "boolean":
            entry = {"kind": "levels", "levels": [False, True]}
        elif kind == "categorical" and not spec.get("hash") and spec.get("levels") is not None:
            entry = {"kind": "levels", "levels": list(spec["levels"])}
        if spec.get("parsed_type"):
            entry["parsed_type"] = spec["parsed_type"]
        columns[spec["name"]] = entry
    return {"columns": columns}


@dataclass
class FeatureDrift:
    """One input column in one run: PSI against training (None: no training bins) and the
    missing rates (training's None when unknown)."""

    psi: float | None
    missing_train: float | None
    missing_run: float
    flagged: bool = False

    @property
    def missing_change(self) -> float | None:
        return None if self.missing_train is None else self.missing_run - self.missing_train

    def to_dict(self) -> dict[str, Any]:
        return {
            "psi": self.psi,
            "missing_train": self.missing_train,
            "missing_run": self.missing_run,
            "missing_change": self.missing_change,
            "flagged": self.flagged,
        }


@dataclass
class RunDrift:
    """One run: which version scored how many rows, and its columns' drift."""

    run_id: str
    version: int
    created_at: str
    rows: int
    features: dict[str, FeatureDrift]
    #: Partitions whose rows are in the profile, of the run's plan (a partition committed just
    #: before an interruption may have lost its profile with the client).
    profiled_partitions: int = 0
    partitions: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "version": self.version,
            "created_at": self.created_at,
            "rows": self.rows,
            "profiled_partitions": self.profiled_partitions,
            "partitions": self.partitions,
            "features": {name: f.to_dict() for name, f in self.features.items()},
        }


@dataclass
class DriftOverRuns:
    """The result of :func:`drift`; ``to_dict()`` is what ``skfleet models drift --json`` prints."""

    model: str
    threshold: float
    runs: list[RunDrift]
    notes: list[str] = field(default_factory=list)

    @property
    def features(self) -> list[str]:
        """Input columns in first-seen order over the runs."""
        seen: dict[str, None] = {}
        for run in self.runs:
            seen.update(dict.fromkeys(run.features))
        return list(seen)

    @property
    def flagged(self) -> list[str]:
        """Columns flagged in at least one of the runs."""
        return [
            f
            for f in self.features
            if any(f in r.features and r.features[f].flagged for r in self.runs)
        ]

    def series(self, feature: str) -> list[tuple[RunDrift, FeatureDrift]]:
        """``(run, drift)`` for each run that profiled ``feature``, oldest first."""
        return [(r, r.features[feature]) for r in self.runs if feature in r.features]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "threshold": self.threshold,
            "flagged": self.flagged,
            "runs": [r.to_dict() for r in self.runs],
            "notes": list(self.notes),
        }


def _reference(meta: Mapping[str, Any]) -> tuple[dict[str, dict[str, Any]], bool]:
    """Per column the training counts (``counts``, ``n_missing``, ``n_rows``), and whether they
    come from a stored profile (False: missing rates from the contract only)."""
    profile = meta.get("profile")
    if isinstance(profile, Mapping) and isinstance(profile.get("columns"), Mapping):
        n = int(profile.get("n_rows") or 0)
        return {
            name: {"counts": c.get("counts"), "n_missing": int(c.get("n_missing", 0)), "n_rows": n}
            for name, c in profile["columns"].items()
        }, True
    contract = meta.get("features") or {}
    n = int(contract.get("n_rows") or 0)
    return {
        c["name"]: {"counts": None, "n_missing": int(c.get("n_missing", 0)), "n_rows": n}
        for c in contract.get("columns") or []
        if c.get("kind") != "excluded"
    }, False


def _run_drift(record, reference: dict[str, dict[str, Any]], threshold: float) -> RunDrift:
    from skfleet.features.run_profile import RowProfile, psi

    profile = RowProfile.from_dict(record.profile)
    features: dict[str, FeatureDrift] = {}
    for name, ref in reference.items():
        counts, missing = profile.column_counts(name)
        train_rate = ref["n_missing"] / ref["n_rows"] if ref["n_rows"] else None
        value = None
        if ref["counts"] is not None:
            value = psi(ref["counts"], ref["n_missing"], counts, missing)
        run_rate = missing / profile.n_rows if profile.n_rows else 0.0
        flagged = value is not None and value > threshold
        features[name] = FeatureDrift(value, train_rate, run_rate, flagged)
    return RunDrift(
        run_id=record.run_id,
        version=int(record.model.get("version", 0)),
        created_at=record.created_at,
        rows=profile.n_rows,
        features=features,
        profiled_partitions=len(record.profile_partitions),
        partitions=len(record.plan),
    )


def drift(
    model: str,
    store: str | None = None,
    runs: int = DRIFT_RUNS,
    threshold: float = DRIFT_THRESHOLD,
    runs_folder: str | None = None,
) -> DriftOverRuns:
    """The drift of the last ``runs`` committed runs of ``model`` (``NAME``: every version's
    runs; ``NAME@V`` or ``NAME@ALIAS``: one version's) against training.

    ``runs_folder`` is where the run records are (default: the store's ``_runs``, as for
    :func:`skfleet.predict`). Raises a :class:`~skfleet.errors.SkfleetError` for an unknown
    model or when no run of it recorded a profile.
    """
    from skfleet.predict.runs import RunStore
    from skfleet.store import ModelStore, parse_model_ref

    try:
        runs, threshold = check_drift_options(runs, threshold)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    model_store = ModelStore(store)
    parsed = parse_model_ref(model)
    latest = model_store.resolve(model)  # an unknown model or version fails here, in one line
    version = None if parsed.version is None and parsed.alias is None else latest.version
    label = parsed.name if version is None else f"{parsed.name}@{version}"
    run_store = RunStore(runs_folder) if runs_folder else RunStore.for_model_store(model_store.uri)
    mine = [
        r
        for r in run_store.records()
        if r.model.get("name") == parsed.name
        and (version is None or r.model.get("version") == version)
        and r.status == "committed"
    ]
    profiled = [r for r in mine if r.profile]
    if not profiled:
        if model_store.metadata(latest).get("kind") == "registered":
            why = "it was registered from outside, so it has no training profile"
        elif mine:
            why = (
                f"none of its {len(mine)} committed runs recorded a profile (they ran before "
                "profiles were recorded)"
            )
        else:
            why = "it has no committed prediction runs"
        raise UsageError(f"no drift over runs for model {label} in {run_store.display}: {why}")
    chosen = profiled[-runs:]
    notes: list[str] = []
    references: dict[int, tuple[dict, bool] | None] = {}
    out: list[RunDrift] = []
    for record in chosen:
        v = int(record.model.get("version", 0))
        if v not in references:
            references[v] = _version_reference(model_store, parsed.name, v, notes)
        if references[v] is not None:
            out.append(_run_drift(record, references[v][0], threshold))
    if not out:
        raise UsageError(f"no drift over runs for model {label}: {notes[0]}")
    return DriftOverRuns(label, threshold, out, notes)


def _version_reference(model_store, name: str, version: int, notes: list[str]):
    from skfleet.errors import SkfleetError

    try:
        meta = model_store.metadata(f"{name}@{version}")
    except SkfleetError as exc:
        notes.append(f"runs of {name}@{version} left out: {exc}")
        return None
    reference, complete = _reference(meta)
    if not complete:
        notes.append(
            f"{name}@{version} has no training profile (stored before profiles were recorded): "
            "missing-rate changes only, no PSI"
        )
    return reference, complete
