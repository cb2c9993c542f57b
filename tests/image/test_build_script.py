"""``images/build.py`` without building anything: where the Debian mirror and the pip index come
from, which pins become constraints, what the build context holds (fast; no buildah needed)."""

from __future__ import annotations

import doctest
import subprocess
import sys

import pytest

from tests.image.workers import BUILD_SCRIPT, REPO, load_build_script

build = load_build_script()


def test_doctests():
    failures, tried = doctest.testmod(build, optionflags=doctest.ELLIPSIS)
    assert tried >= 6 and failures == 0


def test_mirror_from_one_line_sources(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(
        "# deb http://commented.example/debian bookworm main\n"
        "deb http://security.example/debian-security bookworm-security main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian/ bookworm main\n"
    )
    assert build.debian_mirror(tmp_path) == "http://mirror.example/debian"


def test_mirror_skips_disabled_stanzas(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "x.sources").write_text(
        "Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nEnabled: no\n\n"
        "Types: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\n\n"
        "Types: deb\nURIs: http://on.example/debian\nSuites: bookworm bookworm-updates\n"
    )
    assert build.debian_mirror(tmp_path) == "http://on.example/debian"


def test_no_mirror_is_one_line(tmp_path):
    with pytest.raises(build.BuildError, match="no Debian mirror found in .*--mirror"):
        build.debian_mirror(tmp_path)


def test_pip_index_from_a_config_file(tmp_path):
    """The client's own pip, reading a config file: an index with a token in it is kept as is
    (it only ever reaches a pip.conf mounted into the build, never the image)."""
    conf = tmp_path / "pip.conf"
    conf.write_text(
        "[global]\nindex-url = https://u:tok@mirror.example/simple\n"
        "find-links = /srv/wheels\ntimeout = 60\n"
        "[install]\nfind-links = /srv/other\n"
    )
    env = {"PIP_CONFIG_FILE": str(conf), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = build.parse_pip_config(out)
    assert found["index-url"] == "https://u:tok@mirror.example/simple"
    assert found["find-links"] == "/srv/other"  # [install] wins over [global]
    assert "timeout" not in found


def test_constraints_keep_only_plain_pins():
    lines = [
        "numpy==2.1.0",
        "torch==2.3.0+cpu",
        "mypkg @ file:///home/me/mypkg-1.0-py3-none-any.whl",
        "other @ git+https://example.invalid/other@abc",
        "-e git+https://example.invalid/r@abc#egg=r",
        "pkg_resources==0.0.0",
        "",
    ]
    assert build.usable_constraints(lines) == ["numpy==2.1.0", "torch==2.3.0+cpu"]


def test_client_constraints_pin_what_the_version_check_compares():
    pins = {line.split("==")[0].lower() for line in build.client_constraints(sys.executable)}
    assert {"scikit-learn", "numpy", "pyarrow", "skops", "distributed"} <= pins
    assert "skfleet" not in pins  # the editable checkout: the image installs its own copy


def test_context_holds_only_what_the_dockerfile_reads(tmp_path):
    build.stage_context(REPO, tmp_path, ["numpy==2.1.0"])
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["Dockerfile", "README.md", "constraints.txt", "pyproject.toml", "src"]
    assert (tmp_path / "constraints.txt").read_text() == "numpy==2.1.0\n"
    assert not list(tmp_path.rglob("__pycache__"))
    assert (tmp_path / "src" / "skfleet" / "__init__.py").is_file()


def test_missing_client_python_is_one_line(tmp_path):
    done = subprocess.run(
        [sys.executable, str(BUILD_SCRIPT), "--python", str(tmp_path / "nope" / "python")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"error: no client Python at {tmp_path / 'nope' / 'python'}: run `make install` or --python"
    )
    assert done.stdout == ""
