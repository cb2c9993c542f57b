"""A gallery of hostile ``model.skops`` files, each refused in one line before anything in it runs.

Every file is built here the way an attacker would: take a real skops zip and rewrite its
``schema.json`` (names re-exported by trusted packages, classes under loaders that call them,
partials, getters, methods, old file formats). Each test checks the refusal names the offending
name and what it really is, and that nothing ran: a canary folder the file would delete is still
there and a marker file it would create does not exist. Several files are also loaded *with*
trust, to show they are live exploits and the refusal is what stops them.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import skops.io
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from skfleet.errors import SkfleetError, UntrustedModelError
from skfleet.store import (
    ModelStore,
    content_hash,
    dump_artifact,
    load_artifact,
    untrusted_types,
)

# Names under which trusted packages re-export dangerous objects (checked by test_aliases_are_real).
PARTIAL = "sklearn.preprocessing._function_transformer.partial"
PARTIAL_2 = "sklearn.compose._column_transformer.partial"
IMPORT_MODULE = "sklearn.utils.discovery.import_module"
ATTRGETTER = "sklearn.feature_selection._base.attrgetter"
RMTREE = "scipy._lib._tmpdirs.rmtree"
OS_MODULE = "sklearn._config.os"
LISTENER = "sklearn.callback._transport.Listener"
ALIASES = {
    PARTIAL: "functools.partial",
    PARTIAL_2: "functools.partial",
    IMPORT_MODULE: "importlib.import_module",
    ATTRGETTER: "operator.attrgetter",
    RMTREE: "shutil.rmtree",
    OS_MODULE: "os",
    LISTENER: "multiprocessing.connection.Listener",
}


# --- crafting --------------------------------------------------------------------------------


def _split(full: str) -> tuple[str, str]:
    module, _, name = full.rpartition(".")
    return module, name


def _schema(data: bytes) -> dict:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return json.loads(archive.read("schema.json"))


def _with_schema(data: bytes, schema: dict) -> bytes:
    """``data`` with ``schema.json`` replaced (other members, e.g. arrays, kept)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.namelist():
            payload = json.dumps(schema) if item == "schema.json" else src.read(item)
            dst.writestr(item, payload)
    return out.getvalue()


def _renamed(data: bytes, names: dict[str, str]) -> bytes:
    """``data`` with every node named a key of ``names`` renamed to its value."""

    def walk(item):
        if isinstance(item, dict):
            full = f"{item.get('__module__')}.{item.get('__class__')}"
            if full in names:
                item["__module__"], item["__class__"] = _split(names[full])
            for value in item.values():
                walk(value)
        elif isinstance(item, list):
            for value in item:
                walk(value)

    schema = _schema(data)
    walk(schema)
    return _with_schema(data, schema)


def _file(root: dict, protocol: int | None = None) -> bytes:
    """A skops file whose whole content is the hand-made node ``root``."""
    base = skops.io.dumps([1])
    meta = _schema(base)
    root = {**root, "protocol": meta["protocol"] if protocol is None else protocol}
    return _with_schema(base, {**root, "_skops_version": meta["_skops_version"]})


def _node(full: str, loader: str, **fields) -> dict:
    module, name = _split(full)
    return {"__class__": name, "__module__": module, "__loader__": loader, **fields}


def _json(value) -> dict:
    return _node("builtins.str", "JsonNode", content=json.dumps(value), is_json=True)


def _tuple(*items: dict) -> dict:
    return _node("builtins.tuple", "TupleNode", content=list(items))


def _list(*items: dict) -> dict:
    return _node("builtins.list", "ListNode", content=list(items))


def _call(full: str, *args: dict) -> dict:
    """``full(*args)`` through skops' constructor loader."""
    return _node(full, "ConstructorFromReduceNode", content=_tuple(*args))


def _partial(full: str, func: dict, *args: dict) -> dict:
    empty = _node("builtins.dict", "DictNode", content={}, key_types=_list())
    return _node(
        full,
        "PartialNode",
        content={"func": func, "args": _tuple(*args), "kwds": empty, "namespace": _json(None)},
    )


def _keyed(key: str, key_type: dict) -> dict:
    """A dict ``{key: 1}`` whose key type is ``key_type``: skops calls ``key_type(key)``."""
    return _node("builtins.dict", "DictNode", content={key: _json(1)}, key_types=_list(key_type))


def _transformer(func: dict) -> bytes:
    """A real FunctionTransformer + LogisticRegression pipeline whose function is ``func``."""
    model = Pipeline([("f", FunctionTransformer(np.log1p)), ("m", LogisticRegression())])
    data = dump_artifact(model)
    schema = _schema(data)

    def walk(item):
        if isinstance(item, dict):
            for key, value in item.items():
                if isinstance(value, dict) and value.get("__class__") == "log1p":
                    item[key] = func
                else:
                    walk(value)
        elif isinstance(item, list):
            for value in item:
                walk(value)

    walk(schema)
    return _with_schema(data, schema)


@pytest.fixture
def canary(tmp_path) -> Path:
    """A folder a crafted file would delete."""
    folder = tmp_path / "canary"
    folder.mkdir()
    (folder / "keep.txt").write_text("still here")
    return folder


@pytest.fixture
def marker(tmp_path) -> Path:
    """A file a crafted file would create."""
    return tmp_path / "pwned"


def _refused(data: bytes) -> str:
    with pytest.raises(UntrustedModelError) as info:
        load_artifact(data)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("model artifact refers to ")
    assert message.endswith("(pass --trust / trust=True only for files you wrote)")
    assert untrusted_types(data)  # what `skfleet models show` reports agrees
    return message


def _nothing_ran(canary: Path, marker: Path) -> None:
    assert (canary / "keep.txt").read_text() == "still here"
    assert not marker.exists()


# --- the gallery -----------------------------------------------------------------------------


def test_aliases_are_real():
    """The names used below really are re-exports today (else the gallery would prove less)."""
    for alias, real in ALIASES.items():
        module, name = _split(alias)
        obj = getattr(importlib.import_module(module), name)
        shown = obj.__name__ if real == "os" else f"{obj.__module__}.{obj.__qualname__}"
        assert shown == real, alias


def _stand_in(path, ignore_errors, X):
    """Fitted in place of ``shutil.rmtree`` (so fitting deletes nothing); renamed in the file."""
    return X


def _issue_exploit(canary: Path) -> bytes:
    """The reported file: a fitted Pipeline whose first step is
    ``FunctionTransformer(partial(rmtree, DIR, True))``, both names re-exported ones."""
    X, y = np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 0, 1, 1])
    step = FunctionTransformer(functools.partial(_stand_in, str(canary), True))
    model = Pipeline([("f", step), ("m", LogisticRegression())]).fit(X, y)
    return _renamed(
        skops.io.dumps(model), {"functools.partial": PARTIAL, f"{__name__}._stand_in": RMTREE}
    )


def test_the_reported_exploit_is_refused(canary, marker):
    data = _issue_exploit(canary)
    message = _refused(data)
    assert f"refers to '{PARTIAL}', which is functools.partial: not allowed" in message
    _nothing_ran(canary, marker)


def test_the_reported_exploit_is_live_with_trust(canary):
    loaded = load_artifact(_issue_exploit(canary), trust=True)
    loaded.steps[0][1].transform(np.ones((2, 2)))
    assert not canary.exists()


# Each case: (id, builder(canary, marker) -> bytes, what the refusal must say).
CASES = [
    (
        "rmtree-alias-as-key-type",
        lambda c, m: _file(_keyed(str(c), _node(RMTREE, "TypeNode"))),
        f"'{RMTREE}', which is shutil.rmtree: not allowed as a dict key type",
    ),
    (
        "rmtree-alias-as-function-reference",
        lambda c, m: _file(
            _keyed("k", _node("builtins.str", "TypeNode"))
            | {"content": {"k": _node(RMTREE, "FunctionNode")}}
        ),
        f"'{RMTREE}', which is shutil.rmtree: not an allowed class or function",
    ),
    (
        "import_module-alias-called",
        lambda c, m: _file(_call(IMPORT_MODULE, _json("os"))),
        f"'{IMPORT_MODULE}', which is importlib.import_module: not allowed to be called with arguments from the file",
    ),
    (
        "attrgetter-alias-called",
        lambda c, m: _file(_call(ATTRGETTER, _json("system"))),
        f"'{ATTRGETTER}', which is operator.attrgetter: not allowed to be called with arguments from the file",
    ),
    (
        "os.system-as-key-type",
        lambda c, m: _file(_keyed(f"touch {m}", _node("os.system", "FunctionNode"))),
        "'os.system', from a module outside the packages a model may use",
    ),
    (
        "os.system-as-method-of-import_module('os')",
        lambda c, m: _file(
            _keyed(
                f"touch {m}",
                _node(
                    IMPORT_MODULE,
                    "MethodNode",
                    content={"func": "system", "obj": _call(IMPORT_MODULE, _json("os"))},
                ),
            )
        ),
        f"'{IMPORT_MODULE}.system', a method looked up by name at load: not allowed",
    ),
    (
        "eval-as-key-type",
        lambda c, m: _file(
            _keyed(f"open({str(m)!r}, 'w').close()", _node("builtins.eval", "TypeNode"))
        ),
        "'builtins.eval', which is builtins.eval: not allowed as a dict key type",
    ),
    (
        "Listener-alias-called",
        lambda c, m: _file(_call(LISTENER, _tuple(_json("127.0.0.1"), _json(0)))),
        f"'{LISTENER}', which is multiprocessing.connection.Listener: not allowed to be called with arguments from the file",
    ),
    (
        "Listener-alias-rebuilt-from-state",
        lambda c, m: _file(_node(LISTENER, "ObjectNode")),
        f"'{LISTENER}', which is multiprocessing.connection.Listener: not a class a model may hold",
    ),
    (
        "Popen-as-list-class",
        lambda c, m: _file(
            _node(
                "subprocess.Popen",
                "ListNode",
                content=[_json("sh"), _json("-c"), _json(f"touch {m}")],
            )
        ),
        "'subprocess.Popen', from a module outside the packages a model may use",
    ),
    (
        "Popen-called",
        lambda c, m: _file(_call("subprocess.Popen", _list(_json("touch"), _json(str(m))))),
        "'subprocess.Popen', from a module outside the packages a model may use",
    ),
    (
        "nested-partials",
        lambda c, m: _transformer(
            _partial(PARTIAL_2, _partial(PARTIAL, _node(RMTREE, "FunctionNode"), _json(str(c)))),
        ),
        f"'{PARTIAL_2}', which is functools.partial: not allowed",
    ),
    (
        "FunctionTransformer-func-alias",
        lambda c, m: _transformer(_node(RMTREE, "FunctionNode")),
        f"'{RMTREE}', which is shutil.rmtree: not an allowed class or function",
    ),
    (
        "name-resolving-to-a-module",
        lambda c, m: _transformer(_node(OS_MODULE, "FunctionNode")),
        f"'{OS_MODULE}', which is the module os: not an allowed class or function",
    ),
    (
        "missing-module",
        lambda c, m: _file(_node("sklearn.no_such_module.Thing", "ObjectNode")),
        "'sklearn.no_such_module.Thing', which does not resolve (ModuleNotFoundError",
    ),
    (
        "missing-attribute",
        lambda c, m: _file(_node("sklearn.base.NoSuchThing", "ObjectNode")),
        "which does not resolve (module sklearn.base has no 'NoSuchThing')",
    ),
    (
        "__builtins__-of-a-trusted-module",
        lambda c, m: _transformer(_node("sklearn.base.__builtins__", "FunctionNode")),
        "'sklearn.base.__builtins__', which is a builtins.dict object",
    ),
    (
        "__import__",
        lambda c, m: _file(_call("builtins.__import__", _json("os"))),
        "'builtins.__import__', which is builtins.__import__: not allowed to be called with arguments from the file",
    ),
    (
        "getattr",
        lambda c, m: _transformer(_node("builtins.getattr", "TypeNode")),
        "'builtins.getattr', which is builtins.getattr: not an allowed class or function",
    ),
    (
        "open",
        lambda c, m: _file(_call("builtins.open", _json(str(m)), _json("w"))),
        "'builtins.open', which is io.open: not allowed to be called with arguments from the file",
    ),
    (
        "exec-as-key-type",
        lambda c, m: _file(
            _keyed(f"open({str(m)!r}, 'w').close()", _node("builtins.exec", "FunctionNode"))
        ),
        "'builtins.exec', which is builtins.exec: not an allowed class or function",
    ),
    (
        "operator-attrgetter-node",
        lambda c, m: _file(
            _node("operator.attrgetter", "OperatorFuncNode", attrs=_tuple(_json("system")))
        ),
        "'operator.attrgetter', which is operator.attrgetter: not allowed",
    ),
    (
        "pickle-module-inside-numpy",
        lambda c, m: _transformer(_node("numpy.lib._format_impl.pickle", "FunctionNode")),
        "which is the module pickle",
    ),
    (
        "numpy.load-is-no-allowed-function",
        lambda c, m: _transformer(_node("numpy.load", "FunctionNode")),
        "'numpy.load', which is numpy.load: not an allowed class or function",
    ),
    (
        "marshal",
        lambda c, m: _transformer(_node("marshal.loads", "FunctionNode")),
        "'marshal.loads', from a module outside the packages a model may use",
    ),
    (
        "estimator-called-with-file-arguments",
        lambda c, m: _file(_call("sklearn.linear_model.LogisticRegression", _json(1))),
        "which is sklearn.linear_model._logistic.LogisticRegression: not allowed to be called with arguments from the file",
    ),
    (
        "function-as-array-scalar-type",
        lambda c, m: _renamed(skops.io.dumps(np.float64(1.5)), {"numpy.float64": RMTREE}),
        f"'{RMTREE}', which is shutil.rmtree: not a numpy array or scalar type",
    ),
    (
        "import_module-as-loss",
        lambda c, m: _file(
            _node(
                IMPORT_MODULE,
                "LossNode",
                __reduce__={"args": _tuple(_json("os"))},
                content=_node("builtins.dict", "DictNode", content={}, key_types=_list()),
            )
        ),
        f"'{IMPORT_MODULE}', which is importlib.import_module: not a loss class",
    ),
    (
        "numpy.memmap-rebuilt-from-state",
        lambda c, m: _file(_node("numpy.memmap", "ObjectNode")),
        "'numpy.memmap', which is numpy.memmap: not a class a model may hold",
    ),
]


@pytest.mark.parametrize(("build", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_crafted_file_is_refused_before_anything_runs(build, expected, canary, marker):
    message = _refused(build(canary, marker))
    assert expected in message, message
    _nothing_ran(canary, marker)


# Files above that do their damage at load: with trust they do it, which shows they are real.
LIVE = {
    "rmtree-alias-as-key-type": "canary",
    "os.system-as-key-type": "marker",
    "os.system-as-method-of-import_module('os')": "marker",
    "eval-as-key-type": "marker",
    "exec-as-key-type": "marker",
    "Popen-as-list-class": "marker",
    "Popen-called": "marker",
    "open": "marker",
}


@pytest.mark.parametrize("case", sorted(LIVE))
def test_crafted_file_is_live_with_trust(case, canary, marker):
    (build,) = [c[1] for c in CASES if c[0] == case]
    loaded = load_artifact(build(canary, marker), trust=True)
    if isinstance(loaded, subprocess.Popen):
        loaded.wait(timeout=30)
    elif hasattr(loaded, "close"):
        loaded.close()
    if LIVE[case] == "canary":
        assert not canary.exists()
    else:
        assert marker.exists()


def test_old_file_format_loader_is_refused(canary, marker):
    # Protocol 0's FunctionNode imports what its *content* names, whatever the node says.
    func = _node(
        "numpy.log1p", "FunctionNode", content={"module_path": "posix", "function": "system"}
    )
    data = _file(_keyed(f"touch {marker}", func), protocol=0)
    message = _refused(data)
    assert (
        "'numpy.log1p', which skops would load with its FunctionNode loader of an older" in message
    )
    _nothing_ran(canary, marker)
    load_artifact(data, trust=True)
    assert marker.exists()  # the same file, trusted, runs the command: the loader is what mattered


@pytest.mark.parametrize("protocol", [None, 1], ids=["current", "protocol-1"])
def test_bit_generator_named_in_state_must_be_one(protocol):
    data = skops.io.dumps(np.random.default_rng(0))
    schema = _schema(data)
    schema["protocol"] = schema["protocol"] if protocol is None else protocol
    genuine = _with_schema(data, schema)
    assert load_artifact(genuine).random() == np.random.default_rng(0).random()
    text = json.dumps(schema).replace('"\\"PCG64\\""', '"\\"seed\\""')
    assert "seed" in text
    message = _refused(_with_schema(data, json.loads(text)))
    assert "'numpy.random.seed', which is numpy.random.seed: not a numpy bit generator" in (message)


@pytest.mark.parametrize(
    "module",
    [
        "sklearn.conftest",
        "numpy.f2py.__main__",
        "skfleet.__main__",
        "scipy.special._precompute.cosine_cdf",
    ],
)
def test_test_tooling_and_main_modules_are_never_imported(module):
    # Each exists (importing it would run a test setup, a CLI or a computation) and is not loaded.
    assert importlib.util.find_spec(module) is not None
    assert module not in sys.modules
    message = _refused(_file(_node(f"{module}.Thing", "ObjectNode")))
    assert "from a test, packaging or __main__ module: not imported" in message
    assert module not in sys.modules


def test_modules_outside_trusted_packages_are_never_imported():
    assert "antigravity" not in sys.modules  # importing it opens a web browser
    _refused(_file(_node("antigravity.Thing", "ObjectNode")))
    assert "antigravity" not in sys.modules


def test_unknown_loader_is_an_unreadable_file():
    with pytest.raises(SkfleetError, match="not a readable skops file") as info:
        load_artifact(_file(_node("os.system", "EvilNode")))
    assert not isinstance(info.value, UntrustedModelError)
    assert "\n" not in str(info.value)


# --- end to end: `skfleet predict` on a crafted model in a store --------------------------------


def test_cli_predict_refuses_crafted_model(tmp_path, canary):
    rng = np.random.default_rng(0)
    table = pa.table({"id": np.arange(40), "x": rng.normal(size=40)})
    table = table.append_column("y", pa.array((table["x"].to_numpy() > 0).astype(int)))
    pq.write_table(table, tmp_path / "in.parquet")
    store = ModelStore(str(tmp_path / "models"))
    ref = store.save(
        "m",
        Pipeline([("f", FunctionTransformer()), ("m", LogisticRegression())]).fit(
            table.select(["x"]).to_pandas(), table["y"].to_numpy()
        ),
        metadata={
            "kind": "registered",
            "task": "classification",
            "target": "y",
            "key_columns": ["id"],
            "input_columns": ["x"],
            "classes": [0, 1],
        },
    )
    # The attacker swaps the artifact and fixes the hash in model.json.
    crafted = _issue_exploit(canary)
    version_dir = tmp_path / "models" / "m" / str(ref.version)
    (version_dir / "model.skops").write_bytes(crafted)
    meta = json.loads((version_dir / "model.json").read_text())
    meta["artifact"].update(sha256=content_hash(crafted), bytes=len(crafted), untrusted_types=[])
    (version_dir / "model.json").write_text(json.dumps(meta))

    def run(*extra: str) -> subprocess.CompletedProcess:
        args = ["predict", "m", str(tmp_path / "in.parquet"), "--out", str(tmp_path / "out")]
        args += ["--store", str(tmp_path / "models"), "--engine", "local", *extra]
        return subprocess.run(
            [sys.executable, "-m", "skfleet", *args], capture_output=True, text=True, timeout=120
        )

    result = run()
    assert result.returncode == 2, result.stderr
    # The client plans from model.json alone; the process that loads the artifact (here this
    # one) refuses it before constructing anything: one error line after the run's plan note.
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"'{PARTIAL}', which is functools.partial: not allowed" in errors[0]
    assert (canary / "keep.txt").exists()
    assert not (tmp_path / "out").exists()

    # The same store, trusted: the crafted model deletes the folder when it scores.
    result = run("--trust")
    assert not canary.exists(), result.stderr


def test_key_types_shared_through_skops_memo_are_still_checked(canary, marker):
    # skops reuses an earlier node for a repeated ``__id__`` (whatever the second copy says), so
    # a dict's key types can be a list seen before in a harmless place: the check follows it.
    harmless = _list(_node("numpy.log1p", "FunctionNode")) | {"__id__": 5}
    decoy = _list(_node("builtins.str", "TypeNode")) | {"__id__": 5}
    keyed = _keyed("k", _node("builtins.str", "TypeNode")) | {"key_types": decoy}
    message = _refused(_file(_list(harmless, keyed)))
    assert "'numpy.log1p', which is not a type: not allowed as a dict key type" in message
    _nothing_ran(canary, marker)
