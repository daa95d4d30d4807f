"""The pieces of the production topology: a bridge network with worker hosts in network namespaces, a throwaway
PostgreSQL cluster, a Redis broker and a throwaway CA. Each piece starts what it owns and removes it again."""

from __future__ import annotations

import glob
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import trustme

SUBNET = "10.217.0"
CONTROL_IP = f"{SUBNET}.1"  # the control host: API server, scheduler, PostgreSQL, Redis
SAGE_IP = f"{SUBNET}.2"  # the emulator, as Sage, on an address of its own
BRIDGE = "s17br0"
WALL_CLOCK_OFFSET_SOURCE = Path(__file__).with_name("wall_clock_offset.c")


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def build_wall_clock_offset(directory: Path) -> Path:
    """Compile the preload library that moves a host's wall clock (``wall_clock_offset.c``) into ``directory``."""
    library = directory / "wall_clock_offset.so"
    subprocess.run(
        ["cc", "-shared", "-fPIC", "-O2", "-o", str(library), str(WALL_CLOCK_OFFSET_SOURCE), "-ldl"],
        check=True,
        capture_output=True,
        text=True,
    )
    return library


def missing_prerequisites() -> str | None:
    """Why the topology cannot run on this machine, or None."""
    if os.geteuid() != 0:
        return "the production topology needs root (network namespaces)"
    for tool in ("ip", "unshare", "redis-server", "runuser"):
        if not shutil.which(tool):
            return f"the production topology needs {tool}"
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        return "the production topology needs PostgreSQL's server binaries (/usr/lib/postgresql/*/bin)"
    if not shutil.which("cc"):
        return "the production topology needs a C compiler (cc) for its clock-skew host"
    return None


class Network:
    """A bridge on the control host carrying the control and Sage addresses, and one network namespace per worker
    host joined to it by a veth pair (``<SUBNET>.11``, ``.12``, ...)."""

    def __init__(self, workers: int) -> None:
        self.namespaces = [f"s17w{n}" for n in range(1, workers + 1)]
        self.addresses = {ns: f"{SUBNET}.{10 + n}" for n, ns in enumerate(self.namespaces, start=1)}

    def create(self) -> Network:
        routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True, check=True).stdout
        if f"{SUBNET}." in routes:
            raise RuntimeError(f"{SUBNET}.0/24 is already routed here; remove it or change SUBNET:\n{routes}")
        ip("link", "add", BRIDGE, "type", "bridge")
        ip("addr", "add", f"{CONTROL_IP}/24", "dev", BRIDGE)
        ip("addr", "add", f"{SAGE_IP}/24", "dev", BRIDGE)
        ip("link", "set", BRIDGE, "up")
        for ns in self.namespaces:
            ip("netns", "add", ns)
            ip("link", "add", self.veth(ns), "type", "veth", "peer", "name", "eth0", "netns", ns)
            ip("link", "set", self.veth(ns), "master", BRIDGE, "up")
            ip("-n", ns, "addr", "add", f"{self.addresses[ns]}/24", "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")
            ip("-n", ns, "link", "set", "lo", "up")
        return self

    @staticmethod
    def veth(ns: str) -> str:
        return f"{ns}h"  # the control host's end of the namespace's link

    def set_link(self, ns: str, up: bool) -> None:
        """Cut (``up=False``) or restore a worker host's link to the network."""
        ip("link", "set", self.veth(ns), "up" if up else "down")
        ip("-n", ns, "link", "set", "eth0", "up" if up else "down")

    def remove(self) -> None:
        for ns in self.namespaces:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)  # takes its veth pair with it
        subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True)


def free_port(host: str = CONTROL_IP) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class Service:
    """A server process owned by the test, stopped by its PID."""

    def __init__(self, name: str, log: Path) -> None:
        self.name = name
        self.log = log
        self.process: subprocess.Popen | None = None

    def _popen(self, command: list[str], **kwargs) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **kwargs
            )

    def wait_listening(self, port: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log.read_text()[-3000:]}")
            with socket.socket() as sock:
                if sock.connect_ex((CONTROL_IP, port)) == 0:
                    return
            time.sleep(0.2)
        raise RuntimeError(
            f"{self.name} did not listen on {CONTROL_IP}:{port}:\n{self.log.read_text()[-3000:]}"
        )

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, sig)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.process = None


class Postgres(Service):
    """A throwaway PostgreSQL cluster of the test's own, run as the ``postgres`` OS user, listening on the control
    address only: it can be restarted freely and the machine's own PostgreSQL is never touched."""

    def __init__(self, root: Path) -> None:
        super().__init__("postgresql", root / "postgresql.log")
        self.bin = Path(sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1])
        self.data = root / "pgdata"
        self.port = free_port()
        self.url = f"postgresql+psycopg2://postgres@{CONTROL_IP}:{self.port}/airflow"
        self.async_url = f"postgresql+asyncpg://postgres@{CONTROL_IP}:{self.port}/airflow"

    def create(self) -> Postgres:
        self.data.mkdir()
        shutil.chown(self.data, "postgres", "postgres")
        self.data.parent.chmod(0o755)
        subprocess.run(
            [
                *("runuser", "-u", "postgres", "--", str(self.bin / "initdb"), "-D", str(self.data)),
                *("-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"),
            ],
            check=True,
            capture_output=True,
        )
        (self.data / "pg_hba.conf").write_text(
            "local all all trust\n"
            f"host all all {SUBNET}.0/24 trust\n"  # the control host and the worker hosts, nothing else
        )
        self.start()
        subprocess.run(
            [
                *(str(self.bin / "psql"), "-h", CONTROL_IP, "-p", str(self.port), "-U", "postgres"),
                *("-c", "CREATE DATABASE airflow"),
            ],
            check=True,
            capture_output=True,
        )
        return self

    def start(self) -> None:
        settings = {
            "listen_addresses": CONTROL_IP,
            "port": str(self.port),
            "unix_socket_directories": str(self.data),
            "max_connections": "300",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        command = [str(self.bin / "postgres"), "-D", str(self.data)]
        for name, value in settings.items():
            command += ["-c", f"{name}={value}"]
        self._popen(command, user="postgres", group="postgres", extra_groups=[])
        self.wait_listening(self.port)

    def restart(self, down_seconds: float = 0) -> None:
        self.stop(signal.SIGINT)  # fast shutdown: open connections are cut, as in a failover
        time.sleep(down_seconds)
        self.start()


class Redis(Service):
    """The Celery broker: a ``redis-server`` of the test's own on the control address."""

    def __init__(self, root: Path) -> None:
        super().__init__("redis", root / "redis.log")
        self.root = root
        self.port = free_port()
        self.url = f"redis://{CONTROL_IP}:{self.port}/0"

    def create(self) -> Redis:
        self._popen(
            [
                *("redis-server", "--bind", CONTROL_IP, "--port", str(self.port), "--save", ""),
                *("--appendonly", "no", "--dir", str(self.root), "--protected-mode", "no"),
            ]
        )
        self.wait_listening(self.port)
        return self


class Certificates:
    """A throwaway CA and the emulator's certificate for ``SAGE_IP``, as PEM files in ``root``."""

    def __init__(self, root: Path) -> None:
        ca = trustme.CA()
        issued = ca.issue_cert(SAGE_IP)
        self.ca = root / "ca.pem"
        self.cert = root / "sage-cert.pem"
        self.key = root / "sage-key.pem"
        ca.cert_pem.write_to_path(str(self.ca))
        issued.private_key_pem.write_to_path(str(self.key))
        with open(self.cert, "wb") as chain:
            for blob in issued.cert_chain_pems:
                chain.write(blob.bytes())

    @property
    def emulator_tls(self) -> tuple[str, str, str]:
        return str(self.cert), str(self.key), str(self.ca)


def _kept_under_tmp() -> list[str]:
    """The checkout and the Python running the tests, where they live under ``/tmp`` (a CI clone may): a host's
    private ``/tmp`` must not hide the code it runs."""
    paths = {str(Path(__file__).resolve().parents[2]), str(Path(sys.prefix).resolve())}
    return sorted(p for p in paths if p == "/tmp" or p.startswith("/tmp/"))


def worker_prefix(ns: str, hostname: str) -> tuple[str, ...]:
    """Run a command as a separate host: in network namespace ``ns``, with its own hostname (UTS namespace) and its
    own private ``/tmp`` (a tmpfs in a mount namespace; the checkout is bound back in if it lives there). Every
    step execs, so the PID is the command's."""
    keep = "".join(
        f" && mkdir -p {shlex.quote(p)} && mount --bind {shlex.quote('/mnt' + p[len('/tmp') :])} {shlex.quote(p)}"
        for p in _kept_under_tmp()
    )
    # /mnt is only this mount namespace's view of the old /tmp, while the private one is set up.
    setup = f"hostname {hostname} && mount --bind /tmp /mnt && mount -t tmpfs -o mode=1777 tmpfs /tmp{keep}"
    setup += ' && exec "$@"'
    return ("ip", "netns", "exec", ns, "unshare", "--uts", "--mount", "sh", "-c", setup, "sh")
