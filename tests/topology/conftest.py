"""The production topology, one per test session: on the control host a throwaway PostgreSQL cluster (a fresh
database), Redis as the Celery broker, the API server, scheduler (CeleryExecutor), DAG processor and triggerer; three
Celery workers, each a separate host (own network namespace and address, own hostname, own private ``/tmp``),
reaching them over a bridge; the emulator as Sage over HTTPS on an address of its own, with a CA made here.

Everything is started by the fixtures and stopped by PID; the namespaces, the bridge and the temporary directory
are removed at the end. The deployment pieces (provisioning, REST driving) are the e2e suite's.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest

from airflow_provider_sage200.emulator import EmulatorConfig, EmulatorServer
from tests.e2e.conftest import Deployment, provision, start_control_plane, wait_for_api_server
from tests.e2e.soak import TTL, assert_no_token_trouble, soak_figures
from tests.topology.hosts import (
    CONTROL_IP,
    SAGE_IP,
    Certificates,
    Network,
    Postgres,
    Redis,
    build_wall_clock_offset,
    free_port,
    missing_prerequisites,
    worker_prefix,
)

HERE = Path(__file__).resolve().parent
WORKERS = 3
TOKEN_VARIABLE = "sage200_token__sage200_default"
LEASE_VARIABLE = f"{TOKEN_VARIABLE}__refresh_lease"


class Topology(Deployment):
    """A :class:`Deployment` whose control plane listens on the bridge and whose tasks run on worker hosts."""

    def __init__(
        self, home: Path, emulator: EmulatorServer, network: Network, postgres: Postgres, redis: Redis
    ):
        # The dev venv's Python (with the Celery provider and the PostgreSQL drivers); the wheel is the e2e suite's test.
        super().__init__(home, emulator, Path(sys.executable))
        self.network = network
        self.postgres = postgres
        self.port = free_port()
        self.url = f"http://{CONTROL_IP}:{self.port}"
        self.verify = emulator.tls[2]
        self.hosts = {ns: f"sage-{ns.removeprefix('s17')}" for ns in network.namespaces}
        self.clocks: dict[str, dict[str, str]] = {}  # per worker host: what moves its wall clock, if anything
        self.env |= {
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__PARALLELISM": "32",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "socket.gethostname",
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": postgres.url,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": postgres.async_url,
            "AIRFLOW__CELERY__BROKER_URL": redis.url,
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + postgres.url,
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "6",  # 18 slots for the soak's 18 tasks: all hosts take some,
            "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
            # The lease's D (claim write: worker -> API server -> PostgreSQL) and settle delay, for a loaded 2-core
            # control host: at the e2e suite's 1.0 s every claim write overran D and backed off (the task's wait
            # budget ran out), measured with other work on the machine.
            "AIRFLOW__SAGE200__CLAIM_WRITE_LIMIT_SECONDS": "2.0",
            "AIRFLOW__SAGE200__CLAIM_SETTLE_SECONDS": "2.4",
            # 18 tasks starting at once on 2 shared cores: the API server can take longer than the 5 s default.
            "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "60",
            # A worker host that vanished: its task instances fail after 30 s instead of 5 minutes.
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
            # Every process, on every host, trusts the test's CA for Sage (never a verify-off switch).
            "REQUESTS_CA_BUNDLE": emulator.tls[2],
            "SSL_CERT_FILE": emulator.tls[2],
        }

    def api_server_args(self) -> tuple[str, ...]:
        return ("api-server", "--host", CONTROL_IP, "--port", str(self.port))

    def start_worker(self, ns: str, clock_offset: float = 0.0, wait: bool = True) -> None:
        """Start the Celery worker of host ``ns``, its wall clock ``clock_offset`` seconds ahead (negative:
        behind) of the other hosts'; ``wait`` for it to be ready."""
        env = self.env | {"TMPDIR": "/tmp"}  # the host's private /tmp
        self.clocks[ns] = {}
        if clock_offset:
            library = build_wall_clock_offset(self.home)
            self.clocks[ns] = {"LD_PRELOAD": str(library), "SAGE200_WALL_CLOCK_OFFSET": str(clock_offset)}
        env |= self.clocks[ns]
        host = self.hosts[ns]
        log = self.home / f"worker-{host}.log"
        seen = log.stat().st_size if log.exists() else 0
        self.start(
            f"worker-{host}",
            *("celery", "worker", "--celery-hostname", f"{host}@{host}", "--skip-serve-logs"),
            *("--without-gossip", "--without-mingle"),
            prefix=worker_prefix(ns, host),
            env=env,
        )
        if wait:
            self.wait_for_worker(ns, seen)

    def clock_offset(self, ns: str) -> float:
        """How far ahead of the control host's wall clock host ``ns``'s worker reads its own, in seconds."""
        read = subprocess.run(
            ["ip", "netns", "exec", ns, sys.executable, "-c", "import time; print(time.time())"],
            env=os.environ | self.clocks.get(ns, {}),
            capture_output=True,
            text=True,
            check=True,
        )
        return float(read.stdout) - time.time()

    def wait_for_worker(self, ns: str, log_offset: int = 0) -> None:
        log = self.home / f"worker-{self.hosts[ns]}.log"
        self.wait_for(
            f"worker {self.hosts[ns]}", lambda: " ready." in log.read_text(errors="replace")[log_offset:], 300
        )

    def kill_host(self, ns: str) -> None:
        """SIGKILL every process of worker host ``ns`` at once, as when the machine dies."""
        pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True, check=True).stdout
        for pid in pids.split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        process = self.processes.pop(f"worker-{self.hosts[ns]}")
        process.wait(30)

    def stop_worker(self, ns: str) -> None:
        name = f"worker-{self.hosts[ns]}"
        self.stop(name)
        del self.processes[name]

    def restart_api_server(self, down_seconds: float = 3) -> None:
        self.stop("api-server")
        time.sleep(down_seconds)
        self.start("api-server", *self.api_server_args())
        wait_for_api_server(self)

    def variable(self, key: str) -> dict:
        """A JSON Variable, read straight from the metastore by the test harness (the REST API redacts Variables
        whose key names a token); ``{}`` when it is not set."""
        return json.loads(self.variable_value(key) or "{}")

    def lease_holder(self) -> str | None:
        """The worker host holding the refresh lease now, or None."""
        lease = self.variable(LEASE_VARIABLE)
        if not lease.get("owner") or lease.get("lease_until", 0) < time.time():
            return None
        return lease["owner"].split(":")[0]

    def stop_all(self) -> None:
        for ns in self.network.namespaces:  # a worker's task processes first, whatever state they are in
            if f"worker-{self.hosts[ns]}" in self.processes:
                self.stop_worker(ns)
        self.stop()


@pytest.fixture(scope="session")
def topology():
    reason = missing_prerequisites()
    if reason:
        pytest.skip(reason)
    # Not under /tmp: each worker host mounts a private /tmp, and all of them read the DAGs and write the logs here.
    home = Path(tempfile.mkdtemp(prefix="sage200-topology-", dir="/var/tmp"))
    home.chmod(0o755)
    network = Network(WORKERS)
    services: list = []
    topology = None
    try:
        network.create()
        postgres = Postgres(home).create()
        services.append(postgres)
        redis = Redis(home).create()
        services.append(redis)
        certificates = Certificates(home)
        emulator = EmulatorServer(
            EmulatorConfig(sop_orders=5_000, customers=200), host=SAGE_IP, tls=certificates.emulator_tls
        ).start()
        services.append(emulator)
        (home / "airflow").mkdir()
        topology = Topology(home / "airflow", emulator, network, postgres, redis)
        started = time.monotonic()
        provision(topology, [HERE / "topology_dags.py", HERE.parent / "e2e" / "e2e_dags.py"])
        start_control_plane(topology, topology.api_server_args(), ("e2e_soak", "topology_full_export"))
        provisioned = time.monotonic()
        for ns in network.namespaces:
            topology.start_worker(ns, wait=False)
        for ns in network.namespaces:
            topology.wait_for_worker(ns)
        print(
            f"topology: provisioned and control plane up in {provisioned - started:.0f}s, "
            f"workers in {time.monotonic() - provisioned:.0f}s"
        )
        yield topology
    finally:
        if topology is not None:
            topology.stop_all()
        for service in reversed(services):
            service.stop()
        network.remove()
        if os.environ.get("SAGE200_TOPOLOGY_KEEP"):
            print(f"topology: kept {home} (SAGE200_TOPOLOGY_KEEP): logs of every process and task")
        else:
            shutil.rmtree(home, ignore_errors=True)


def soak(topology: Topology, seconds: float, during=None) -> dict:
    """Run the e2e soak DAG (16 hammer tasks, a parallel export, the refresh operator) for ``seconds`` on a 5-second
    access token with zero reuse grace and reuse detection on; ``during(run_id)`` injects a fault meanwhile.

    Returns the run (states and hostnames) and its figures, after checking that the token Variable ends holding the
    refresh token Sage accepts: the last one Sage issued, and a refresh with it succeeds.
    """
    emulator = topology.emulator.client
    emulator.configure(access_token_ttl=TTL, reuse_grace=0, reuse_detection=True)
    try:
        topology.sage200("token", "refresh")  # start from a 5-second token
        before = emulator.stats()
        started = time.monotonic()
        run_id = topology.trigger("e2e_soak", {"seconds": seconds})
        fault = during(run_id) if during else None
        run = topology.wait_for_run("e2e_soak", run_id, timeout=seconds + 420)
        elapsed = time.monotonic() - started
        after = emulator.stats()
        stored = topology.variable(TOKEN_VARIABLE)["refresh_token"]
        accepted = stored == emulator.issued_tokens()["refresh_tokens"][-1]
    finally:
        emulator.configure(access_token_ttl=3600)
    topology.sage200("token", "refresh")  # the stored refresh token works
    assert emulator.stats()["invalid_grant"] == after["invalid_grant"]
    hosts = Counter(host for task, _, host in run["hostnames"] if task == "hammer")
    run["figures"] = {
        "soak_seconds": seconds,
        "tasks": len(run["task_instances"]),
        "hammer_tasks_per_host": dict(sorted(hosts.items())),
        "tasks_per_host": dict(sorted(Counter(host for _, _, host in run["hostnames"]).items())),
        "fault": fault,
        "variable_holds_accepted_refresh_token": accepted,
        **soak_figures(before, after, elapsed),
    }
    print("topology soak:", json.dumps(run["figures"]))
    assert accepted, run["figures"]
    assert_no_token_trouble(run["figures"])
    return run


def failed_tasks(run: dict) -> list[tuple]:
    return [
        (task, index, host)
        for (task, index, state), (_, _, host) in zip(run["task_instances"], run["hostnames"], strict=True)
        if state != "success"
    ]
