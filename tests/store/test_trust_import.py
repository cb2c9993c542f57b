"""The trust policy imports skops without skops' walk over all of scikit-learn, and skops' own
default lists stay exactly what skops computes.

Each case runs in a fresh interpreter: what matters is what a process imports before it first
loads a model, and a test process has imported everything already.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

#: Modules only ``sklearn.utils.all_estimators`` imports on the path that loads a
#: LogisticRegression pipeline (skops imports ``sklearn.cluster`` and the tree modules itself),
#: and ``sklearn.ensemble``, which only skops' list of HistGradientBoosting's types imports.
WALKED_ONLY = (
    "sklearn.neural_network",
    "sklearn.semi_supervised",
    "sklearn.gaussian_process",
    "sklearn.ensemble",
)


def run_fresh(code: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip()


def test_loading_a_checked_model_does_not_walk_scikit_learn():
    out = run_fresh(
        f"""
        import sys
        import numpy as np
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from skfleet.store.artifact import dump_artifact, load_artifact
        model = make_pipeline(StandardScaler(), LogisticRegression())
        model.fit(np.arange(20.0).reshape(10, 2), [0, 1] * 5)
        loaded = load_artifact(dump_artifact(model))
        assert loaded.predict(np.zeros((1, 2))).shape == (1,)
        import skops.io._general as general
        print(general.SKLEARN_ESTIMATOR_TYPE_NAMES._value is None)
        print(general.NUMPY_UFUNC_TYPE_NAMES._value is None)
        print(sorted(set({WALKED_ONLY!r}).intersection(sys.modules)))
        """
    )
    assert out.splitlines() == ["True", "True", "[]"]


def test_skops_defaults_are_skops_own_when_read():
    # Someone else's use of skops in the same process sees skops' full default list: a plain
    # skops.io.loads of a scikit-learn estimator still passes skops' own audit.
    out = run_fresh(
        """
        import skfleet.store.trust  # noqa: F401 (imports skops the cheap way)
        import skops.io
        import skops.io._general as general
        import skops.io._trusted_types as trusted_types
        from skops.io._utils import get_type_name
        from sklearn.utils import all_estimators
        from sklearn.linear_model import LogisticRegression
        expected = [
            get_type_name(cls) for _, cls in all_estimators()
            if get_type_name(cls).startswith("sklearn.")
        ]
        assert list(general.SKLEARN_ESTIMATOR_TYPE_NAMES) == expected
        assert list(trusted_types.SKLEARN_ESTIMATOR_TYPE_NAMES) == expected
        assert len(expected) > 100
        assert "sklearn.linear_model._logistic.LogisticRegression" in general.SKLEARN_ESTIMATOR_TYPE_NAMES
        loaded = skops.io.loads(skops.io.dumps(LogisticRegression(C=2.0)))
        print(type(loaded).__name__, loaded.C)
        """
    )
    assert out == "LogisticRegression 2.0"


def test_every_skops_default_list_is_skops_own_when_read():
    # Each list skops' loaders read, through the modules that imported it, equals what skops'
    # own module computes in a process where skfleet is not involved.
    plain = run_fresh(
        """
        import json
        import skops.io._trusted_types as trusted_types
        names = [name for name in dir(trusted_types) if name.endswith("_NAMES")]
        print(json.dumps({name: list(getattr(trusted_types, name)) for name in names}))
        """
    )
    read = run_fresh(
        """
        import json
        import skfleet.store.trust  # noqa: F401 (imports skops the cheap way)
        import skops.io._general as general
        import skops.io._numpy as numpy_nodes
        import skops.io._trusted_types as trusted_types
        lists = {}
        for module in (trusted_types, general, numpy_nodes):
            for name in dir(module):
                if name.endswith("_NAMES"):
                    lists.setdefault(name, []).append(list(getattr(module, name)))
        # Skops' own expressions on the lists give plain lists of the same names.
        assert general.PRIMITIVE_TYPE_NAMES + general.CONTAINER_TYPE_NAMES == (
            list(general.PRIMITIVE_TYPE_NAMES) + list(general.CONTAINER_TYPE_NAMES)
        )
        dtypes = numpy_nodes.NUMPY_DTYPE_TYPE_NAMES
        assert ["x"] + dtypes == ["x", *dtypes]
        print(json.dumps(lists))
        """
    )
    expected = json.loads(plain)
    found = json.loads(read)
    assert set(found) <= set(expected)
    assert {
        "NUMPY_UFUNC_TYPE_NAMES",
        "SCIPY_UFUNC_TYPE_NAMES",
        "SKLEARN_INTERNAL_TYPE_NAMES",
    } <= set(found)
    for name, copies in found.items():
        assert all(copy == expected[name] for copy in copies), name
    assert any("_BinMapper" in name
               for name in expected["SKLEARN_INTERNAL_TYPE_NAMES"])  # fmt: skip


def test_refusals_are_the_same_after_the_cheap_import():
    # The checks do not read skops' defaults: a file naming a forbidden function is refused as
    # before, whichever of skfleet's or skops' lists were computed first.
    out = run_fresh(
        """
        import importlib, skops.io
        from skfleet.store import trust
        data = skops.io.dumps({"f": importlib.import_module})
        print(trust.first_refusal(data).name)
        """
    )
    assert out == "importlib.import_module"
