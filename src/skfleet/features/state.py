"""The fitted state of a ``TableEncoder`` as compact JSON text, for skops and pickle.

skops writes every attribute of every object as a node of a few hundred bytes (class, module,
loader, id, key types). The encoder holds one ``ColumnSpec`` and one ``ColumnProfile`` per column,
so a 10,000-column model made a 250 MB ``schema.json`` that took minutes to write and to audit.
As one JSON string each, the whole encoder takes under a kilobyte a column.

Text is used only when it reads back exactly: the contract through its own JSON form
(:meth:`FeatureContract.to_dict`), checked equal; the profile when every level is a ``str``,
``int``, ``bool`` or ``float`` (the types JSON keeps apart). Anything else stays an object.

>>> import pyarrow as pa
>>> from skfleet.features.encoder import TableEncoder
>>> enc = TableEncoder().fit(pa.table({"c": ["a", "b", "a"], "x": [1.0, 2.0, None]}))
>>> state = pack(enc.__dict__)
>>> type(state["contract_"]).__name__, type(state["profile_"]).__name__
('str', 'str')
>>> back = unpack(state)
>>> back["contract_"] == enc.contract_, back["profile_"].columns["c"] == enc.profile_.columns["c"]
(True, True)
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from skfleet.features.contract import FeatureContract
from skfleet.features.profile import ColumnProfile, TableProfile
from skfleet.features.stats import DistinctSketch, LevelCounts, Moments

#: Level types JSON reads back as the same Python type.
_PLAIN = (str, int, bool, float)
_PREFIX = "skfleet-json:"


def pack(state: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``state`` with ``contract_`` and ``profile_`` as text where that is exact."""
    out = dict(state)
    contract = out.get("contract_")
    if isinstance(contract, FeatureContract):
        text = _dumps(contract.to_dict())
        if text is not None and FeatureContract.from_dict(json.loads(text)) == contract:
            out["contract_"] = _PREFIX + text
    profile = out.get("profile_")
    if isinstance(profile, TableProfile):
        plain = _profile_to_plain(profile)
        text = None if plain is None else _dumps(plain)
        if text is not None:
            out["profile_"] = _PREFIX + text
    return out


def unpack(state: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`pack` (state saved before it, with objects, passes unchanged)."""
    out = dict(state)
    for key, build in (("contract_", FeatureContract.from_dict), ("profile_", _profile_from_plain)):
        value = out.get(key)
        if isinstance(value, str) and value.startswith(_PREFIX):
            out[key] = build(json.loads(value[len(_PREFIX) :]))
    return out


def _dumps(value: Any) -> str | None:
    """JSON text, or None when ``value`` holds something JSON has no exact spelling for (a numpy
    number, a date): the object is then kept as it is."""
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError):
        return None


def _profile_to_plain(profile: TableProfile) -> dict | None:
    columns = {}
    for name, col in profile.columns.items():
        levels = col.levels
        if levels is not None and not all(type(v) in _PLAIN for v in levels.values):
            return None
        columns[name] = [
            col.arrow_type,
            col.n_rows,
            col.n_missing,
            None if col.moments is None else [col.moments.n, col.moments.mean, col.moments.m2],
            None
            if levels is None
            else [levels.values, levels.counts, levels.limit, levels.overflowed],
            None
            if col.sketch is None
            else [col.sketch.k, str(col.sketch.hashes.dtype), col.sketch.hashes.tolist()],
            col.n_words,
            col.date_text,
        ]
    return {"n_rows": profile.n_rows, "order": list(profile.order), "columns": columns}


def _profile_from_plain(data: dict) -> TableProfile:
    columns = {}
    for name, row in data["columns"].items():
        arrow_type, n_rows, n_missing, moments, levels, sketch, n_words, date_text = row
        columns[name] = ColumnProfile(
            arrow_type=arrow_type,
            n_rows=n_rows,
            n_missing=n_missing,
            moments=None if moments is None else Moments(*moments),
            levels=None if levels is None else LevelCounts(*levels),
            sketch=None
            if sketch is None
            else DistinctSketch(sketch[0], np.asarray(sketch[2], dtype=sketch[1])),
            n_words=n_words,
            date_text=date_text,
        )
    return TableProfile(data["n_rows"], columns, list(data["order"]))
