"""The test bed's hosts themselves: what they share (the installed environment) and what they do
not (files, processes, network), and that faults and teardown do what they say."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.cluster.hosts import PREFIX, STATE_ROOT, Network, namespaces_unavailable
from tests.cluster.testbed import host_env

CHECKOUT = Path(__file__).resolve().parents[2]
#: Connect to ADDRESS:PORT with a timeout; exit 0 if it answers, 1 if not.
PROBE = (
    "import socket, sys\n"
    "try:\n"
    "    socket.create_connection((sys.argv[1], int(sys.argv[2])), float(sys.argv[3])).close()\n"
    "except OSError as exc:\n"
    "    sys.exit(f'unreachable: {exc}')\n"
)
SERVE = "import socket, time; s = socket.create_server(('0.0.0.0', 7000)); time.sleep(600)"


@pytest.fixture
def pair():
    """Two bare hosts, ``a`` and ``b``, on a bridge of their own."""
    reason = namespaces_unavailable()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    network = Network.create({"a": "10.250.0.2", "b": "10.250.0.3"})
    try:
        a = network.start_host("a", "10.250.0.2", host_env())
        b = network.start_host("b", "10.250.0.3", host_env())
        yield network, a, b
    finally:
        network.destroy()


def _bed_namespaces(tag: str) -> list[str]:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in listed.splitlines() if f"{PREFIX}{tag}-" in line]


def test_hosts_share_the_environment_and_nothing_else(pair):
    _, a, b = pair
    a.run(["sh", "-c", "echo secret > /tmp/work/mine"])
    assert a.path("/tmp/work/mine").read_text() == "secret\n"
    seen = b.run(["sh", "-c", "ls /tmp/work; ls -a " + str(CHECKOUT)]).stdout.split()
    assert "mine" not in seen  # a private /tmp on each host
    assert "tests" not in seen and "pyproject.toml" not in seen  # the checkout is covered...
    assert b.run(["python", "-c", "import skfleet, sklearn; print('ok')"]).stdout == "ok\n"
    assert b.run(["hostname"]).stdout == "b\n"
    # ... and what shows through is read-only.
    wrote = b.run(["sh", "-c", f"touch {sys.prefix}/x"], check=False)
    assert wrote.returncode != 0 and "Read-only" in wrote.stderr
    # Nothing of the test process's environment leaks in.
    assert "AWS_ENDPOINT_URL=http://s3:9000" in b.run(["env"]).stdout
    assert "PYTEST_CURRENT_TEST" not in b.run(["env"]).stdout


def test_a_cut_link_silences_the_host_until_restored(pair):
    network, a, b = pair
    b.spawn(["python", "-c", SERVE], log="serve")
    probe = ["python", "-c", PROBE, "b", "7000", "2"]
    deadline = time.monotonic() + 30
    while a.run(probe, check=False).returncode != 0:
        assert time.monotonic() < deadline, "the server on b never answered"
        time.sleep(0.2)
    network.cut("b")
    started = time.monotonic()
    cut = a.run(probe, check=False)
    # No RST, no ICMP: the connection attempt just times out, as across a dead cable.
    assert cut.returncode != 0 and "timed out" in cut.stderr
    assert time.monotonic() - started >= 1.9
    network.restore("b")
    deadline = time.monotonic() + 30
    while a.run(probe, check=False).returncode != 0:
        assert time.monotonic() < deadline, "b did not come back after the link was restored"
        time.sleep(0.2)


def test_killing_a_host_kills_all_its_processes_and_it_boots_again(pair):
    network, a, b = pair
    for name in ("one", "two"):
        b.spawn(["sleep", "600"], log=name)
    b.spawn(["sh", "-c", "sleep 600 & sleep 600"], log="three")  # a grandchild too
    b.path("/tmp/work/gone").write_text("x")
    netns = network.hosts["b"].netns

    def pids():
        return subprocess.run(["ip", "netns", "pids", netns], capture_output=True).stdout.split()

    assert len(pids()) >= 5
    b.kill()
    assert pids() == []
    b.boot()
    assert b.run(["ls", "/tmp/work"]).stdout == ""  # /tmp was a tmpfs: gone with the host
    assert (b.disk / "log" / "one.log").exists()  # its disk survived


def test_teardown_and_stale_beds_from_killed_runs(tmp_path):
    """A bed whose test process was SIGKILLed is removed by the next bed that starts."""
    reason = namespaces_unavailable()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    script = textwrap.dedent(
        """
        import sys, time
        from tests.cluster.hosts import Network
        from tests.cluster.testbed import host_env
        network = Network.create({"x": "10.250.0.2"})
        host = network.start_host("x", "10.250.0.2", host_env())
        host.spawn(["sleep", "600"], log="sleep")
        print(network.tag, flush=True)
        time.sleep(600)
        """
    )
    orphan = subprocess.Popen(
        [sys.executable, "-c", script], cwd=CHECKOUT, stdout=subprocess.PIPE, text=True
    )
    tag = orphan.stdout.readline().strip()
    assert tag and len(_bed_namespaces(tag)) == 2  # the bridge's namespace and host x
    orphan.send_signal(signal.SIGKILL)
    orphan.wait(10)
    assert len(_bed_namespaces(tag)) == 2  # left behind, sleep still running in it
    network = Network.create({})
    try:
        assert _bed_namespaces(tag) == []
        assert not (STATE_ROOT / tag).exists()
        assert not Path(f"/etc/netns/{PREFIX}{tag}-x").exists()
    finally:
        network.destroy()
    assert _bed_namespaces(network.tag) == [] and not network.state.exists()
