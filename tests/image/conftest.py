"""Fixtures of the image suite: the build script, and the worker images it builds (once per
session; the base image and the dependency layer stay cached in buildah's storage)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sklearn

from tests.image.workers import (
    BUILD_SCRIPT,
    BUILT_FROM,
    buildah,
    load_build_script,
    source_digest,
)


def unavailable(reason: str) -> None:
    """Skip: this machine cannot build images. Under CI the image must be tested: fail."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but the worker image cannot be built: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def image_build():
    """The build script as a module, once buildah is known to be here."""
    if os.geteuid() != 0:
        unavailable("building the worker image needs root (buildah, debootstrap)")
    build = load_build_script()
    try:
        build.ensure_tools()
    except build.ToolsUnavailable as exc:
        unavailable(str(exc))
    return build


def run_build(args: list[str], log: Path) -> str:
    """Run the build script; its last stdout line is the image name."""
    with open(log, "w") as err:
        done = subprocess.run(
            [sys.executable, str(BUILD_SCRIPT), "--python", sys.executable, *args],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        pytest.fail(f"image build failed ({done.returncode}):\n{log.read_text()[-4000:]}")
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def worker_image(image_build, tmp_path_factory) -> str:
    """``skfleet-worker:test``, pinned to this venv: built once per session."""
    log = tmp_path_factory.mktemp("image") / "build.log"
    before = source_digest()
    image = run_build(["--tag", "skfleet-worker:test", "--prune"], log)
    # Changed while building: which copy the image holds is unknown, so never claim a match.
    BUILT_FROM[image] = before if source_digest() == before else "changed during the build"
    return image


@pytest.fixture(scope="session")
def skewed_image(image_build, worker_image, tmp_path_factory) -> tuple[str, str]:
    """A layer on the worker image with another scikit-learn: an image built without the client's
    constraints. Returns (image, its scikit-learn version)."""
    context = tmp_path_factory.mktemp("skewed")
    (context / "Dockerfile").write_text(
        f"FROM {worker_image}\n"
        "USER root\n"
        # --no-deps: only the version differs; the rest of the image stays as it was.
        f'RUN pip install --no-deps "scikit-learn<{sklearn.__version__}" '
        "&& python -c 'import sklearn; print(sklearn.__version__)' > /opt/sklearn-version\n"
        "USER skfleet\n"
    )
    image = "skfleet-worker:test-skewed"
    image_build.bud(image, context, python=sys.executable)
    container = buildah("from", "--pull=never", image)
    try:
        version = buildah("run", container, "--", "cat", "/opt/sklearn-version")
    finally:
        buildah("rm", container)
    assert version != sklearn.__version__
    return image, version
