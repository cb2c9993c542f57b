"""Test hosts made of Linux namespaces: their own network, their own /tmp, nothing else shared.

A *host* is a network namespace with one interface (``eth0``, a veth pair whose other end sits on
a bridge in a namespace of its own) plus, inside it, mount, UTS and PID namespaces started by
``unshare`` (its hostname is its name): a tmpfs on ``/tmp``, the project checkout covered by a tmpfs in which only the
installed environment (the virtualenv and, for an editable install, the package sources) is bound
back read-only, and a *disk* (a folder of the test bed, bound at ``/srv``) that survives the host
being killed, as a real disk survives a reboot. PID 1 of the host is a small reaper; SIGKILL to it
makes the kernel kill every process of the host at once, which is what "the host died" means.

Commands run in a host through ``nsenter`` with a clean environment (``env -i``), so nothing of the
test process's environment (say, an S3 endpoint on 127.0.0.1) leaks in.

Reusable outside the bed's fixture: ``network = Network.create({"w1": "10.250.0.11", ...})``,
then ``host = network.start_host("w1", "10.250.0.11", env)`` and ``host.spawn([...], log="w")`` /
``host.run([...])``; ``network.destroy()`` at the end.

Nothing here is reachable from the machine's own network: the bridge has no uplink and the hosts
have no default route, so their traffic never leaves the bed.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

#: Every namespace of a bed is named ``skfbed-<tag>-<what>``; stale ones are found by this prefix.
PREFIX = "skfbed-"
#: One folder per bed (owner pid, host disks and logs), so a later run can clean a killed one up.
STATE_ROOT = Path(tempfile.gettempdir()) / "skfleet-testbed"
#: Per-namespace files ``ip netns exec`` binds over /etc (we write each host's ``hosts``).
ETC_NETNS = Path("/etc/netns")
#: Where a host sees its disk.
DISK_MOUNT = "/srv"
#: The host's PID 1: reaps orphans (pg_ctl's server, daemonised children) until it is killed.
_REAPER = (
    "import os, signal\n"
    "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})\n"
    "while True:\n"
    "    signal.sigwait({signal.SIGCHLD})\n"
    "    try:\n"
    "        while os.waitpid(-1, os.WNOHANG)[0]:\n"
    "            pass\n"
    "    except ChildProcessError:\n"
    "        pass\n"
)


def sh(*args: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
    """Run a setup command (``ip ...``) in the test process's own namespaces."""
    return subprocess.run(list(args), check=check, capture_output=True, text=True, timeout=timeout)


def namespaces_unavailable() -> str | None:
    """Why a bed cannot be built here (None when it can): root, iproute2 and util-linux needed."""
    if sys.platform != "linux":
        return "the multi-host test bed needs Linux namespaces"
    if os.geteuid() != 0:
        return "the multi-host test bed needs root (ip netns, unshare)"
    for tool in ("ip", "unshare", "nsenter", "mount"):
        if shutil.which(tool) is None:
            return f"the multi-host test bed needs {tool!r} (apt-get install iproute2 util-linux)"
    probe = f"{PREFIX}probe-{os.getpid()}"
    try:
        made = sh("ip", "netns", "add", probe, check=False)
        if made.returncode != 0:
            return f"cannot create a network namespace: {made.stderr.strip()}"
        inner = sh(
            "ip", "netns", "exec", probe, "unshare", "--mount", "--pid", "--fork", "true",
            check=False,
        )  # fmt: skip
        if inner.returncode != 0:
            return f"cannot create mount/PID namespaces: {inner.stderr.strip()}"
    finally:
        sh("ip", "netns", "del", probe, check=False)
    return None


def _installed_paths(checkout: Path) -> list[Path]:
    """What of the checkout a host may see: the virtualenv and the sources an editable install
    imports from (both are "the installed environment"; the rest of the checkout is not)."""
    import skfleet

    wanted = {Path(sys.prefix).resolve(), Path(skfleet.__file__).resolve().parents[1]}
    return sorted(p for p in wanted if p.is_relative_to(checkout) and p != checkout)


def _checkout() -> Path:
    return Path(__file__).resolve().parents[2]


def _init_script(checkout: Path, keep: list[Path]) -> str:
    """The shell that builds a host's mounts before becoming its reaper (run as PID 1).

    Order matters: the disk is bound first and the cover is assembled on it, so that covering
    ``/tmp`` (which may hold the bed's folder, or the checkout itself) hides nothing still needed.
    """
    stage = f"{DISK_MOUNT}/.cover"
    lines = [
        "set -e",
        'hostname "$0"',  # its own UTS namespace: socket.gethostname() names the host
        f'mount --bind "$HOST_DISK" {DISK_MOUNT}',
        f"mkdir -p {stage}",
        f"mount -t tmpfs -o mode=755 cover {stage}",
    ]
    for path in keep:
        inside = f"{stage}/{path.relative_to(checkout)}"
        lines += [f"mkdir -p {shlex.quote(inside)}"]
        lines += [f"mount --bind -o ro {shlex.quote(str(path))} {shlex.quote(inside)}"]
    lines += [
        "mount -t tmpfs -o mode=1777 tmp /tmp",
        f"mkdir -p {shlex.quote(str(checkout))}",
        f"mount --move {stage} {shlex.quote(str(checkout))}",
        "mkdir -p /tmp/home /tmp/work",
        f'exec "$HOST_PYTHON" -c {shlex.quote(_REAPER)}',
    ]
    return "\n".join(lines)


def _process_start(pid: int) -> str | None:
    """The start time of ``pid`` (field 22 of /proc/PID/stat), to tell a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


@dataclass
class Host:
    """One host of a bed: its network namespace, its PID-1 process and its disk."""

    name: str
    address: str
    netns: str
    disk: Path
    env: dict[str, str]
    init: subprocess.Popen | None = field(default=None, repr=False)
    pid: int | None = None  # PID 1 of the host, as this machine numbers it

    @property
    def log_dir(self) -> Path:
        return self.disk / "log"

    def boot(self, timeout: float = 20) -> None:
        """Start (or restart after :meth:`kill`) the host's mount/PID namespaces and reaper."""
        checkout = _checkout()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")}
        env |= {"HOST_DISK": str(self.disk), "HOST_PYTHON": sys.executable}
        script = _init_script(checkout, _installed_paths(checkout))
        boot_log = open(self.log_dir / "boot.log", "a")  # noqa: SIM115
        self.init = subprocess.Popen(
            ["ip", "netns", "exec", self.netns, "unshare", "--mount", "--propagation", "private"]
            + ["--uts", "--pid", "--fork", "--mount-proc", "sh", "-c", script, self.name],
            stdout=boot_log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        boot_log.close()
        deadline = time.monotonic() + timeout
        while True:
            # unshare --fork: the host's PID 1 is the child of the unshare process.
            children = Path(f"/proc/{self.init.pid}/task/{self.init.pid}/children")
            with contextlib.suppress(OSError):
                pids = children.read_text().split()
                if pids and self._is_reaper(int(pids[0])):
                    self.pid = int(pids[0])
                    return
            if self.init.poll() is not None or time.monotonic() > deadline:
                log = (self.log_dir / "boot.log").read_text()[-2000:]
                raise RuntimeError(f"host {self.name} did not boot: {log}")
            time.sleep(0.05)

    def _is_reaper(self, pid: int) -> bool:
        """PID 1 has exec'd the reaper (its mounts are then all in place)."""
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        # Not the shell before it (whose script holds the reaper's code too).
        return len(cmdline) > 2 and cmdline[0] != b"sh" and cmdline[2] == _REAPER.encode()

    @property
    def alive(self) -> bool:
        return self.init is not None and self.init.poll() is None

    def command(
        self,
        args: list[str],
        env: dict[str, str] | None = None,
        cwd: str = "/tmp/work",
        user: str | None = None,
    ) -> list[str]:
        """``args`` as a command line that runs inside this host with a clean environment."""
        if self.pid is None:
            raise RuntimeError(f"host {self.name} is not running")
        variables = [f"{k}={v}" for k, v in {**self.env, **(env or {})}.items()]
        inner = ["env", "-i", "-C", cwd, *variables, *args]
        if user is not None:
            inner = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *inner]
        namespaces = ["--net", "--mount", "--uts", "--pid"]
        return ["nsenter", "-t", str(self.pid), *namespaces, "--", *inner]

    def spawn(self, args: list[str], log: str, stdin=subprocess.DEVNULL, **kwargs):
        """Start ``args`` in the host, its output appended to ``<disk>/log/<log>.log``; the
        :class:`subprocess.Popen` (``stdin=subprocess.PIPE`` to talk to it)."""
        with open(self.log_dir / f"{log}.log", "a") as out:
            return subprocess.Popen(
                self.command(args, **kwargs),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=stdin,
                text=True,
                start_new_session=True,
            )

    def run(
        self, args: list[str], timeout: float = 120, check: bool = True, **kwargs
    ) -> subprocess.CompletedProcess:
        """Run ``args`` in the host to completion; stdout and stderr captured as text.

        Output goes through temporary files, not pipes: a daemon started by the command (pg_ctl's
        server) inherits them and would keep a pipe open.
        """
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            proc = subprocess.run(
                self.command(args, **kwargs),
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                timeout=timeout,
                check=False,
            )
            out.seek(0)
            err.seek(0)
            done = subprocess.CompletedProcess(proc.args, proc.returncode, out.read(), err.read())
        if check and done.returncode != 0:
            raise RuntimeError(
                f"{shlex.join(args)} failed on host {self.name} (exit {done.returncode}):\n"
                f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
        return done

    def path(self, inside: str) -> Path:
        """Where the test process finds the host's file ``inside`` (e.g. in its private /tmp)."""
        if self.pid is None:
            raise RuntimeError(f"host {self.name} is not running")
        return Path(f"/proc/{self.pid}/root") / inside.lstrip("/")

    def kill(self) -> None:
        """SIGKILL every process of the host at once (its PID 1: the kernel kills the rest)."""
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        if self.init is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.init.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.init.wait(10)
        # What is left in the network namespace are the nsenter wrappers (outside the host's PID
        # namespace, exiting now that their child died): done once they are gone.
        deadline = time.monotonic() + 10
        while _kill_netns_processes(self.netns) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.pid = None


@dataclass
class Network:
    """A bridge in a namespace of its own, and the hosts plugged into it."""

    tag: str
    state: Path
    hosts: dict[str, Host] = field(default_factory=dict)
    #: Host name -> address for every host's ``/etc/hosts`` (``ip netns exec`` binds
    #: ``/etc/netns/<namespace>/hosts`` over it), so hosts find each other by name.
    names: dict[str, str] = field(default_factory=dict)

    @property
    def bridge_ns(self) -> str:
        return f"{PREFIX}{self.tag}-net"

    @classmethod
    def create(cls, names: dict[str, str] | None = None, tag: str | None = None) -> Network:
        """A fresh bridge (after cleaning up the leftovers of beds whose test run was killed).

        ``names``: host name -> address of the hosts to come, for their ``/etc/hosts``.
        """
        cleanup_stale()
        tag = tag or os.urandom(3).hex()
        state = STATE_ROOT / tag
        # The owner file exists before the folder has its name and before any namespace: a later
        # run removes what this one leaves behind once this process is gone, never sooner.
        STATE_ROOT.mkdir(parents=True, exist_ok=True)
        draft = Path(tempfile.mkdtemp(prefix=".new-", dir=STATE_ROOT))
        (draft / "owner").write_text(f"{os.getpid()} {_process_start(os.getpid())}\n")
        draft.chmod(0o755)
        draft.rename(state)
        network = cls(tag, state, names=dict(names or {}))
        try:
            sh("ip", "netns", "add", network.bridge_ns)
            network.ip("link", "set", "lo", "up")
            network.ip("link", "add", "br0", "type", "bridge")
            network.ip("link", "set", "br0", "up")
        except BaseException:
            network.destroy()
            raise
        return network

    def ip(self, *args: str) -> subprocess.CompletedProcess:
        """``ip`` in the bridge's namespace."""
        return sh("ip", "-n", self.bridge_ns, *args)

    def start_host(
        self, name: str, address: str, env: dict[str, str] | None = None, prefix: int = 24
    ) -> Host:
        """Plug a new host with ``address`` into the bridge and boot it."""
        netns = f"{PREFIX}{self.tag}-{name}"
        disk = self.state / name
        disk.mkdir(mode=0o755)
        host = Host(name, address, netns, disk, dict(env or {}))
        self.hosts[name] = host
        etc = ETC_NETNS / netns
        etc.mkdir(parents=True)
        lines = ["127.0.0.1 localhost", "::1 localhost ip6-localhost"]
        lines += [f"{addr} {host_name}" for host_name, addr in self.names.items()]
        (etc / "hosts").write_text("\n".join(lines) + "\n")
        sh("ip", "netns", "add", netns)
        self.ip(
            "link", "add", self.port(name), "type", "veth", "peer", "name", "eth0", "netns", netns
        )
        self.ip("link", "set", self.port(name), "master", "br0", "up")
        for args in (
            ("link", "set", "lo", "up"),
            ("addr", "add", f"{address}/{prefix}", "dev", "eth0"),
            ("link", "set", "eth0", "up"),
        ):
            sh("ip", "-n", netns, *args)
        host.boot()
        return host

    def port(self, name: str) -> str:
        """The bridge-side end of a host's cable (interface names are at most 15 bytes)."""
        return f"v-{name}"[:15]

    def cut(self, name: str) -> None:
        """Pull the host's cable: the bridge-side end goes down, so nothing gets through either
        way, and neither side is told (no RST, no FIN), as when a switch port or a cable dies."""
        self.ip("link", "set", self.port(name), "down")

    def restore(self, name: str) -> None:
        self.ip("link", "set", self.port(name), "up")

    def destroy(self) -> None:
        """Kill every host and remove every namespace and link of this bed; idempotent."""
        for host in self.hosts.values():
            host.kill()
        _remove_bed(self.tag, self.state)


def _kill_netns_processes(netns: str) -> int:
    """SIGKILL whatever still runs in ``netns`` (e.g. a host of a killed test run); how many."""
    found = sh("ip", "netns", "pids", netns, check=False).stdout.split()
    for pid in found:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    return len(found)


def _remove_bed(tag: str, state: Path | None) -> None:
    names = [n for n in _netns_names() if n.startswith(f"{PREFIX}{tag}-")]
    for name in names:
        _kill_netns_processes(name)
    for name in names:
        # Deleting the bridge's namespace removes its veth ends, and with them the hosts' ends.
        sh("ip", "netns", "del", name, check=False)
    for etc in ETC_NETNS.glob(f"{PREFIX}{tag}-*"):
        shutil.rmtree(etc, ignore_errors=True)
    if state is not None:
        shutil.rmtree(state, ignore_errors=True)


def _netns_names() -> list[str]:
    listed = sh("ip", "netns", "list", check=False).stdout
    return [line.split()[0] for line in listed.splitlines() if line.strip()]


def _owner_alive(state: Path) -> bool:
    try:
        pid_text, start = (state / "owner").read_text().split()
    except (OSError, ValueError):
        return False
    return _process_start(int(pid_text)) == start


def cleanup_stale() -> None:
    """Remove the beds of test runs that are gone (killed before their teardown ran).

    A bed whose owner process still runs (another engineer's test run) is left alone; a
    namespace with the bed prefix and no folder at all is a leftover too (the folder is made
    first and removed last).
    """
    live: set[str] = set()
    if STATE_ROOT.exists():
        for state in STATE_ROOT.iterdir():
            if state.name.startswith("."):
                continue  # a bed being created right now
            if _owner_alive(state):
                live.add(state.name)
            else:
                _remove_bed(state.name, state)
    leftovers = _netns_names()
    if ETC_NETNS.exists():
        leftovers += [path.name for path in ETC_NETNS.iterdir()]
    for name in leftovers:
        if not name.startswith(PREFIX) or name.startswith(f"{PREFIX}probe-"):
            continue
        tag = name[len(PREFIX) :].split("-", 1)[0]
        if tag not in live and not (STATE_ROOT / tag).exists():
            _remove_bed(tag, None)
