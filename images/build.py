#!/usr/bin/env python3
"""Build the skfleet worker image with buildah, pinned to a client's environment (``make image``).

    python images/build.py [--python .venv/bin/python] [--tag skfleet-worker:VERSION]

No Docker engine or registry is needed: Debian's ``buildah`` builds the repository's
``Dockerfile`` (installed with apt-get when missing and running as root). Steps:

1. ``constraints.txt`` from the client's environment (``pip freeze --exclude-editable``, minus
   lines pip cannot use as constraints), so the image holds the client's exact versions: the
   connect-time version check of ``--engine tcp://`` requires that.
2. The base image ``python:3.11-slim``, if absent from buildah's storage and no registry can be
   reached to pull it, is stood in for by a Debian bookworm root filesystem (``debootstrap`` from
   the mirror apt is set up with, Python in a venv at ``/usr/local`` as in the official image,
   this machine's CA bundle). It is built once and then found in buildah's storage.
3. ``buildah bud`` in a staged copy of the build context, with pip pointed at the package index
   this machine's pip uses: the host's index settings go into a ``pip.conf`` bind-mounted into the
   build's ``RUN`` steps only, with any ``file://`` index or find-links folder mounted read-only at
   the same path. Nothing of this lands in the image or its history (an index URL may hold a token).

The last line printed on stdout is the image's name. Exit status 2 with one ``error:`` line when a
tool is missing or a step fails; 3 when buildah cannot be had here (not root, no apt-get).
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parents[1]
BASE_IMAGE = "python:3.11-slim"
#: Packages the stand-in base gets on top of minbase: what the official image provides that the
#: Dockerfile relies on (Python with venv and pip, CA certificates).
BASE_PACKAGES = ("python3", "python3-venv", "python3-pip", "ca-certificates")
#: Label marking a base image this script made, so it is never mistaken for the official one.
STAND_IN_LABEL = "org.skfleet.base-stand-in=debootstrap"
#: pip settings that say where packages come from; handed to the build.
PIP_INDEX_KEYS = ("index-url", "extra-index-url", "find-links", "trusted-host")
#: Files copied into the build context (the Dockerfile reads nothing else).
CONTEXT_FILES = ("Dockerfile", "pyproject.toml", "README.md")


class BuildError(Exception):
    """A step failed: one line for the user."""


class ToolsUnavailable(BuildError):
    """buildah or debootstrap is missing and cannot be installed here."""


def log(message: str) -> None:
    print(f"image: {message}", file=sys.stderr, flush=True)


def run(cmd: list[str], *, env: dict[str, str] | None = None, what: str) -> str:
    """Run ``cmd``; its stderr passes through, its stdout is returned. Failing raises BuildError."""
    try:
        done = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True, check=False)
    except OSError as exc:
        raise BuildError(f"{what}: cannot run {cmd[0]}: {exc}") from None
    if done.returncode != 0:
        raise BuildError(f"{what} failed (exit {done.returncode}): {shlex.join(cmd[:6])} ...")
    return done.stdout


# -- tools -----------------------------------------------------------------------------------------


def ensure_tools(tools: dict[str, str] | None = None) -> None:
    """Install the Debian packages behind missing ``tools`` ({command: package}) with apt-get."""
    tools = tools or {"buildah": "buildah", "debootstrap": "debootstrap"}
    missing = sorted({pkg for cmd, pkg in tools.items() if shutil.which(cmd) is None})
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise ToolsUnavailable(
            f"{', '.join(missing)} missing and cannot be installed here "
            "(needs root and apt-get): install them, then run again"
        )
    log(f"installing {' '.join(missing)} with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing]
    if subprocess.run(install, env=env, stdout=subprocess.DEVNULL, check=False).returncode != 0:
        # The package lists may be missing or stale (a fresh machine): update once and retry.
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=False)
        if subprocess.run(install, env=env, stdout=subprocess.DEVNULL, check=False).returncode:
            raise ToolsUnavailable(f"apt-get could not install {', '.join(missing)}")


def buildah_env() -> dict[str, str]:
    # chroot isolation: no user namespaces or runc needed, which sandboxes and CI containers
    # rarely allow.
    return {**os.environ, "BUILDAH_ISOLATION": "chroot"}


def image_exists(name: str) -> bool:
    done = subprocess.run(
        ["buildah", "inspect", "--type", "image", name],
        env=buildah_env(),
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


# -- the Debian mirror and the host's pip index ----------------------------------------------------


def debian_mirror(apt_dir: Path = Path("/etc/apt")) -> str:
    """The first Debian archive URI apt is set up with (deb822 ``.sources`` or one-line ``.list``).

    >>> import tempfile; d = Path(tempfile.mkdtemp()); (d / "sources.list.d").mkdir()
    >>> _ = (d / "sources.list.d" / "a.sources").write_text(
    ...     "Types: deb\\nURIs: http://m.example/debian-security\\nSuites: bookworm-security\\n\\n"
    ...     "Types: deb\\nURIs: http://m.example/debian\\nSuites: bookworm\\n")
    >>> debian_mirror(d)
    'http://m.example/debian'
    """
    files = sorted((apt_dir / "sources.list.d").glob("*.sources"))
    files += [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*.list"))]
    for path in files:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        if path.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                fields = _deb822(stanza)
                if "deb" in fields.get("types", "").split() and fields.get("enabled") != "no":
                    for uri in fields.get("uris", "").split():
                        if _is_main_archive(uri, fields.get("suites", "")):
                            return uri.rstrip("/")
        else:
            for line in text.splitlines():
                words = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
                if len(words) >= 3 and words[0] == "deb" and _is_main_archive(words[1], words[2]):
                    return words[1].rstrip("/")
    raise BuildError(
        f"no Debian mirror found in {apt_dir}/sources.list(.d): pass --mirror http://.../debian"
    )


def _deb822(stanza: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in stanza.splitlines():
        if line.startswith("#") or ":" not in line or line[:1].isspace():
            continue
        key, value = line.split(":", 1)
        fields[key.strip().lower()] = value.strip()
    return fields


def _is_main_archive(uri: str, suites: str) -> bool:
    # The security archive holds only updates: debootstrap needs the full distribution.
    return "security" not in uri and "security" not in suites and uri.startswith("http")


def host_pip_index(python: str) -> dict[str, str]:
    """Where the client's pip finds packages: {key: value} for :data:`PIP_INDEX_KEYS`.

    Read through ``pip config list``, so every source counts (``PIP_*`` variables, user, site and
    global files); a variable wins over an ``[install]`` section, which wins over ``[global]``.
    """
    out = run([python, "-m", "pip", "config", "list"], what="reading the host's pip config")
    return parse_pip_config(out)


def parse_pip_config(text: str) -> dict[str, str]:
    """
    >>> parse_pip_config("global.index-url='https://a/simple'\\n:env:.find-links='/w'\\n"
    ...                  "global.find-links='/x'\\nglobal.cert='/c.pem'\\n")
    {'index-url': 'https://a/simple', 'find-links': '/w'}
    """
    rank = {":env:": 0, "install": 1, "global": 2}
    found: dict[str, tuple[int, str]] = {}
    for line in text.splitlines():
        m = re.fullmatch(r"([^.=]*)\.([\w-]+)=(.*)", line.strip())
        if not m or m[2] not in PIP_INDEX_KEYS or m[1] not in rank:
            continue
        value = m[3]
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        if m[2] not in found or rank[m[1]] < found[m[2]][0]:
            found[m[2]] = (rank[m[1]], value)
    return {key: found[key][1] for key in PIP_INDEX_KEYS if key in found}


def local_index_dirs(index: dict[str, str]) -> list[Path]:
    """Folders behind ``file://`` (or plain path) indexes and find-links, to mount in the build.

    A PEP 503 index at ``.../simple`` links its files relative to it (``../../files/...``), so
    the folder above ``simple`` is mounted.

    >>> local_index_dirs({"extra-index-url": "file:///srv/pypi/simple https://x/simple",
    ...                   "find-links": "/srv/wheels"})
    [PosixPath('/srv/pypi'), PosixPath('/srv/wheels')]
    """
    dirs: list[Path] = []
    for key in ("index-url", "extra-index-url", "find-links"):
        for item in index.get(key, "").split():
            parsed = urlparse(item)
            if parsed.scheme not in ("", "file"):
                continue
            path = Path(parsed.path)
            if not path.is_absolute():
                continue
            if path.name == "simple":
                path = path.parent
            if path not in dirs:
                dirs.append(path)
    return dirs


def host_ca_bundle() -> Path:
    """The CA bundle this machine's TLS clients trust (an intercepting proxy's CA included)."""
    for candidate in (
        os.environ.get("PIP_CERT"),
        os.environ.get("SSL_CERT_FILE"),
        ssl.get_default_verify_paths().cafile,
        "/etc/ssl/certs/ca-certificates.crt",
    ):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise BuildError("no CA bundle found on this machine (set SSL_CERT_FILE)")


# -- constraints -----------------------------------------------------------------------------------


def client_constraints(python: str) -> list[str]:
    """The client's ``pip freeze --exclude-editable``, minus what pip cannot take as constraints."""
    out = run(
        [python, "-m", "pip", "freeze", "--exclude-editable"], what="freezing the client's venv"
    )
    return usable_constraints(out.splitlines())


def usable_constraints(lines: list[str]) -> list[str]:
    """Keep ``name==version`` pins; drop direct references (``name @ file:///...`` cannot be
    constraints and name files the image cannot see), options and Debian's bogus
    ``pkg-resources==0.0.0``.

    >>> usable_constraints(["numpy==2.0.1", "x @ file:///tmp/x.whl", "-e git+https://h/r#egg=r",
    ...                     "pkg-resources==0.0.0", "# comment", "scikit-learn==1.6.1"])
    ['numpy==2.0.1', 'scikit-learn==1.6.1']
    """
    kept = []
    for line in lines:
        line = line.strip()
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*==[^\s;@]+", line):
            continue
        if line.lower().startswith(("pkg-resources==", "pkg_resources==")):
            continue
        kept.append(line)
    return kept


# -- the base image --------------------------------------------------------------------------------


def pull(name: str) -> bool:
    """Pull the official ``name`` if a registry is reachable (then no stand-in is needed)."""
    log(f"pulling {name}")
    try:
        done = subprocess.run(
            ["buildah", "pull", "--quiet", f"docker.io/library/{name}"],
            env=buildah_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=600,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["failed"])[-1]
        log(f"cannot pull {name} ({reason[:200]}): building a stand-in")
    return done.returncode == 0


def bootstrap_base(mirror: str, name: str = BASE_IMAGE, suite: str = "bookworm") -> None:
    """Commit a Debian ``suite`` root filesystem as ``name``, shaped like the official image.

    The official ``python:3.11-slim`` keeps its Python in ``/usr/local``; a venv there puts
    ``python`` and ``pip`` at the same paths over Debian's python3 (3.11 in bookworm).
    """
    ensure_tools({"debootstrap": "debootstrap"})
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="skfleet-rootfs-", dir="/var/tmp") as tmp:
        root = Path(tmp) / "rootfs"
        log(f"bootstrapping Debian {suite} from {mirror} (once; cached as {name})")
        run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(BASE_PACKAGES)}",
                suite,
                str(root),
                mirror,
            ],
            what="debootstrap",
        )
        run(["chroot", str(root), "python3", "-m", "venv", "/usr/local"], what="venv in /usr/local")
        # This machine's CA bundle, so pip and apt reach what the host reaches (through an
        # intercepting proxy, if any); pip is told to use it explicitly, since a pip upgraded in
        # the image would otherwise switch to its own bundled certificates.
        shutil.copyfile(host_ca_bundle(), root / "etc/ssl/certs/ca-certificates.crt")
        (root / "etc/pip.conf").write_text("[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n")
        # Package lists and caches are not part of the official image either.
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (root / leftover).glob("*"):
                if path.is_file():
                    path.unlink()
        env = buildah_env()
        container = run(["buildah", "from", "scratch"], env=env, what="buildah from").strip()
        try:
            mount = run(["buildah", "mount", container], env=env, what="buildah mount").strip()
            run(["cp", "-a", f"{root}/.", mount], what="copying the root filesystem")
            run(["buildah", "umount", container], env=env, what="buildah umount")
            config = ["--env", "PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
            config += ["--env", "LANG=C.UTF-8", "--cmd", "python3", "--label", STAND_IN_LABEL]
            run(["buildah", "config", *config, container], env=env, what="buildah config")
            run(["buildah", "commit", "--quiet", container, name], env=env, what="buildah commit")
        finally:
            subprocess.run(["buildah", "rm", container], env=env, capture_output=True, check=False)
    log(f"base image {name} ready in {time.monotonic() - started:.0f} s")


# -- the build -------------------------------------------------------------------------------------


def image_version(repo: Path = REPO) -> str:
    with open(repo / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["version"]


def stage_context(repo: Path, dest: Path, constraints: list[str] | None) -> None:
    """Copy what the Dockerfile reads into ``dest``: the checkout's virtualenv, caches and git
    objects never reach the builder, and no ``constraints.txt`` is written into the checkout."""
    for name in CONTEXT_FILES:
        shutil.copy2(repo / name, dest / name)
    shutil.copytree(
        repo / "src",
        dest / "src",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"),
    )
    if constraints is not None:
        (dest / "constraints.txt").write_text("\n".join(constraints) + "\n")


def pip_conf(index: dict[str, str], cert: str | None) -> str:
    """A ``pip.conf`` holding the host's index settings (and the CA bundle mounted beside it).

    >>> print(pip_conf({"index-url": "https://m/simple"}, "/etc/xdg/pip/host-ca.crt"), end="")
    [global]
    index-url = https://m/simple
    cert = /etc/xdg/pip/host-ca.crt
    """
    lines = ["[global]", *(f"{key} = {value}" for key, value in index.items())]
    if cert:
        lines.append(f"cert = {cert}")
    return "\n".join(lines) + "\n"


def build(
    tag: str,
    *,
    python: str,
    repo: Path = REPO,
    pin: bool = True,
    base: str = BASE_IMAGE,
    mirror: str | None = None,
) -> str:
    """Build ``tag`` from ``repo``'s Dockerfile (pinned to ``python``'s environment if ``pin``)."""
    ensure_tools({"buildah": "buildah"})
    if not image_exists(base) and not pull(base):
        bootstrap_base(mirror or debian_mirror(), base)
    constraints = client_constraints(python) if pin else None
    with tempfile.TemporaryDirectory(prefix="skfleet-image-") as tmp:
        context = Path(tmp)
        stage_context(repo, context, constraints)
        log(f"building {tag} ({len(constraints or [])} pinned packages)")
        version = base.split(":")[1].split("-")[0]
        bud(tag, context, python=python, build_args={"PYTHON_VERSION": version})
    return tag


def bud(tag: str, context: Path, *, python: str, build_args: dict[str, str] | None = None) -> None:
    """``buildah bud`` of ``context``/Dockerfile as ``tag``, with pip pointed at the index
    ``python``'s pip uses (mounted for the ``RUN`` steps only, so nothing of it is baked in)."""
    index = host_pip_index(python)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="skfleet-pip-") as tmp:
        pipdir = Path(tmp)
        # pip reads /etc/xdg/pip/pip.conf as a global file.
        shutil.copyfile(host_ca_bundle(), pipdir / "host-ca.crt")
        (pipdir / "pip.conf").write_text(pip_conf(index, "/etc/xdg/pip/host-ca.crt"))
        pipdir.chmod(0o755)
        for path in pipdir.iterdir():
            path.chmod(0o644)
        volumes = [f"{pipdir}:/etc/xdg/pip:ro"]
        volumes += [f"{d}:{d}:ro" for d in local_index_dirs(index) if d.is_dir()]
        cmd = ["buildah", "bud", "--pull=never", "--network", "host", "--layers"]
        for volume in volumes:
            cmd += ["--volume", volume]
        for name, value in (build_args or {}).items():
            cmd += ["--build-arg", f"{name}={value}"]
        cmd += ["-t", tag, "-f", str(context / "Dockerfile"), str(context)]
        log(f"buildah bud {tag} (pip index settings: {', '.join(index) or 'PyPI'})")
        # bud's own progress goes to stderr with the rest of the log; stdout is ours.
        try:
            done = subprocess.run(cmd, env=buildah_env(), stdout=sys.stderr, check=False)
        except OSError as exc:
            raise BuildError(f"cannot run buildah: {exc}") from None
        if done.returncode != 0:
            raise BuildError(f"buildah bud of {tag} failed (exit {done.returncode}); see above")
    log(f"built {tag} in {time.monotonic() - started:.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--python",
        default=str(REPO / ".venv/bin/python"),
        help="the client's Python, whose packages the image pins (default: .venv/bin/python)",
    )
    parser.add_argument("--tag", help="image name (default: skfleet-worker:<skfleet version>)")
    parser.add_argument(
        "--no-pin",
        action="store_true",
        help="resolve the newest versions pyproject.toml allows instead of the client's",
    )
    parser.add_argument("--mirror", help="Debian mirror for the stand-in base (default: apt's)")
    parser.add_argument(
        "--prune",
        action="store_true",
        help="then remove dangling images (earlier builds' leftovers) from buildah's storage",
    )
    args = parser.parse_args(argv)
    tag = args.tag or f"skfleet-worker:{image_version()}"
    try:
        if not Path(args.python).exists():
            raise BuildError(f"no client Python at {args.python}: run `make install` or --python")
        build(tag, python=args.python, pin=not args.no_pin, mirror=args.mirror)
        if args.prune:
            # Every rebuild after a source change leaves the previous image untagged; on a CI
            # machine that builds on every run they would pile up.
            subprocess.run(
                ["buildah", "rmi", "--prune"], env=buildah_env(), capture_output=True, check=False
            )
    except ToolsUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(tag)
    return 0


if __name__ == "__main__":
    sys.exit(main())
