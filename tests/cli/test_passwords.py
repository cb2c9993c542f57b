"""Passwords with ``@ : / ? #`` in them (issue #12, item 2), through every command.

Percent-encoded, such a password works and appears nowhere skfleet prints or stores. Left as typed,
the URL cannot be split unambiguously (libpq and urllib read different hosts out of it, and libpq
quotes a piece of the password back as a host or port): it is refused in one masked line.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import skfleet
from skfleet.cli import main

#: The pieces a leak would show (each is distinctive enough not to occur by chance).
PASSWORD = "Qx7kW@Zz9mR:Ab5tY/Cd3pL?Ef8nB#99"
PIECES = ["Qx7kW", "Zz9mR", "Ab5tY", "Cd3pL", "Ef8nB"]


def _rows(n: int = 200) -> pa.Table:
    rng = np.random.default_rng(4)
    x = rng.normal(size=n)
    return pa.table(
        {
            "id": np.arange(n, dtype=np.int64),
            "x": x,
            "price": np.round(1_000 * x + 3_000).astype(np.int64),
        }
    )


@pytest.fixture(scope="module")
def role(pg):
    """A login role whose password holds every character a URL gives a meaning to."""
    name = f"nasty_{uuid.uuid4().hex[:6]}"
    with pg.connect() as conn:
        conn.execute(f"CREATE ROLE {name} LOGIN SUPERUSER PASSWORD '{PASSWORD}'")
    return name


def _url(pg, user: str, password: str, table: str) -> str:
    return f"postgresql://{user}:{password}@{pg.host}:{pg.port}/postgres?table={table}"


def _cli(*args: str):
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout + result.stderr


def _no_piece(text: str, where: str) -> None:
    leaked = [p for p in PIECES if p in text]
    assert not leaked, f"{where} shows {leaked}: {text[:500]}"


def _stored_text(folder: Path) -> str:
    return "".join(
        p.read_text(errors="replace")
        for p in folder.rglob("*")
        if p.is_file() and p.suffix in (".json", ".html")
    )


def test_encoded_password_works_and_is_never_shown(pg, role, tmp_path):
    src = tmp_path / "in.parquet"
    pq.write_table(_rows(), src)
    table = f"public.pw_{uuid.uuid4().hex[:6]}"
    url = _url(pg, role, quote(PASSWORD, safe=""), table)
    code, text = _cli("copy", str(src), "--out", url, "--engine", "local")
    assert code == 0, text
    _no_piece(text, "copy")
    store = tmp_path / "models"
    code, text = _cli(
        "train", url, "--target", "price", "--model", "ridge", "--key", "id", "--cv", "2",
        "--name", "pw", "--store", str(store),
    )  # fmt: skip
    assert code == 0, text
    _no_piece(text, "train")
    out = _url(pg, role, quote(PASSWORD, safe=""), f"{table}_scores")
    code, text = _cli(
        "predict", "pw", url, "--out", out, "--store", str(store), "--engine", "local"
    )
    assert code == 0, text
    _no_piece(text, "predict")
    stored = _stored_text(store)
    assert "***" in stored
    _no_piece(stored, "the model store (model.json, report, run records)")
    assert json.loads((store / "pw" / "1" / "model.json").read_text())["source"].startswith(
        f"postgresql://{role}:***@"
    )


@pytest.mark.parametrize(
    "password",
    [
        "Qx7kW@Zz9mR",  # urllib splits at the last '@', libpq at the first
        "Ab5tY:Cd3pL/Ef8nB",  # libpq reads the host as the user and the port as 'Ab5tY:Cd3pL'
        "Ab5tY?Cd3pL",  # the rest would become the query string
        "Ef8nB#Zz9mR",  # ... or a fragment
    ],
)
def test_unencoded_password_is_refused_masked_in_every_command(pg, role, tmp_path, password):
    src = tmp_path / "in.parquet"
    pq.write_table(_rows(), src)
    url = _url(pg, role, password, "public.whatever")
    store = tmp_path / "models"
    skfleet.train("ridge", _rows(), "price", keys=["id"], cv=0, report=False, name="m", store=store)
    before = sorted(p for p in store.rglob("*") if p.is_file())
    commands = [
        ["copy", url, "--out", str(tmp_path / "o.parquet"), "--engine", "local"],
        ["copy", str(src), "--out", url, "--engine", "local"],
        ["train", url, "--target", "price", "--model", "ridge", "--store", str(store)],
        ["train-stream", url, "--target", "price", "--model", "sgd-linear", "--store", str(store)],
        ["predict", "m", str(src), "--out", url, "--store", str(store), "--engine", "local"],
        ["predict", "m", url, "--out", str(tmp_path / "o.parquet"), "--store", str(store)],
    ]
    for args in commands:
        code, text = _cli(*args)
        assert code == 2, (args[0], text)
        lines = text.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), text
        assert f"postgresql://{role}:***@" in lines[0] and "percent-encode" in lines[0], text
        _no_piece(text, args[0])
    assert (
        sorted(p for p in store.rglob("*") if p.is_file()) == before
        and not (tmp_path / "o.parquet").exists()
    )
