"""``make bench``: export N sales orders from the emulator with each tool, in one run, and report medians.

Tools: this provider (``max_concurrency`` 1, default, 8), the HTTP provider's ``HttpOperator`` with ``$skip``
paging, dlt's ``rest_api`` source (its own virtual environment), and the bound
``ceil(N / page_size) x latency / concurrency``. Each export runs in its own process against one emulator per
size with injected latency; requests and token refreshes are the emulator's own counts.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_sage200.emulator import EmulatorConfig, EmulatorServer
from benchmarks.emulator_capacity import capacity, process_cpu_seconds
from benchmarks.exporters import PAGE_SIZE
from benchmarks.imports import import_cost
from benchmarks.report import print_summary, write_report

REPO = Path(__file__).resolve().parents[1]
DLT_PYTHON = REPO / "benchmarks" / ".venv-dlt" / "bin" / "python"
TOOLS = ("provider_k1", "provider_default", "provider_k8", "floor_k8", "http_operator", "dlt")
# max_concurrency passed to Sage200GetOperator; None: not passed at all (the operator's default).
PROVIDER_K = {"provider_k1": 1, "provider_default": None, "provider_k8": 8}
API_ROUTE = "GET sop_orders"
LARGE = 1_000_000


def airflow_env(home: Path) -> dict[str, str]:
    """A throwaway Airflow home (SQLite, Fernet key) for the children; they run outside any task."""
    skip = ("AIRFLOW", "_AIRFLOW", "PYTHONDONTWRITEBYTECODE")  # children reuse compiled bytecode
    env = {k: v for k, v in os.environ.items() if not k.startswith(skip)}
    return (
        env
        | {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__FERNET_KEY": "3x3lq8yJ9uQfAZ8d1o4w9nF2m1cT7eH5kL0pR6sV2bY=",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "_AIRFLOW_PROCESS_CONTEXT": "server",  # as the sage200 CLI: connections and Variables from the metastore
            "PYTHONPATH": str(REPO),
        }
    )


def run_python(code: str, env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{code!r} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def connect(env: dict[str, str], emulator: EmulatorServer) -> dict[str, str]:
    """Point the ``sage200_default`` and ``bench_http`` connections at ``emulator`` and consent once."""
    site = emulator.client.sites()[0]
    sage = {
        "conn_type": "sage200",
        "login": emulator.config.client_id,
        "password": emulator.config.client_secret,
        "extra": {
            "api_url": emulator.api_url(),
            "auth_url": emulator.auth_url,
            "token_url": emulator.token_url,
            "redirect_uri": emulator.config.redirect_uris[0],
            "site_id": site["site_id"],
            "company_id": site["company_id"],
        },
    }
    parts = urlsplit(emulator.url)
    http = {"conn_type": "http", "host": parts.hostname, "port": parts.port, "schema": "http"}
    env = env | {
        "AIRFLOW_CONN_SAGE200_DEFAULT": json.dumps(sage),
        "AIRFLOW_CONN_BENCH_HTTP": json.dumps(http),
    }
    run_python(
        "import requests\n"
        "from urllib.parse import parse_qs, urlsplit\n"
        "from airflow_provider_sage200.hooks.sage200 import Sage200Hook\n"
        "hook = Sage200Hook()\n"
        "answer = requests.get(hook.authorization_url('bench'), allow_redirects=False, timeout=30)\n"
        "hook.exchange_code(parse_qs(urlsplit(answer.headers['Location']).query)['code'][0])\n",
        env,
    )
    return env


class SizeRun:
    """One emulator (``size`` orders, injected latency) and the exports measured against it."""

    def __init__(self, home: Path, env: dict[str, str], emulator: EmulatorServer, size: int) -> None:
        self.home, self.emulator, self.size = home, emulator, size
        self.env = connect(env, emulator)
        self.count = 0

    def command(self, tool: str, out: Path) -> tuple[list[str], dict[str, str]]:
        if tool in PROVIDER_K:
            k = PROVIDER_K[tool]
            args = [] if k is None else [str(k)]
            return [sys.executable, "-m", "benchmarks.exporters", "provider", str(out), *args], self.env
        if tool == "http_operator":
            return [sys.executable, "-m", "benchmarks.exporters", "http_operator", str(out)], self.env
        if tool == "floor_k8":
            return [sys.executable, "-m", "benchmarks.exporters", "floor", str(out), "8"], self.env
        if tool == "dlt":
            command = [str(DLT_PYTHON), str(REPO / "benchmarks" / "dlt_export.py"), str(out)]
            return command, self.env | self.dlt_env()
        raise ValueError(f"unknown tool {tool!r}")

    def dlt_env(self) -> dict[str, str]:
        """dlt gets the access token the hook stores (read before the clock starts), like HttpOperator."""
        token = run_python(
            "from airflow_provider_sage200.hooks.sage200 import Sage200Hook\n"
            "print(Sage200Hook().get_access_token())",
            self.env,
        ).split()[-1]
        site = self.emulator.client.sites()[0]
        return {
            "BENCH_API_URL": self.emulator.api_url(),
            "BENCH_TOKEN": token,
            "BENCH_SITE": site["site_id"],
            "BENCH_COMPANY": str(site["company_id"]),
            "RUNTIME__LOG_LEVEL": "WARNING",
        }

    def measure(self, tool: str) -> dict[str, Any]:
        """One export in its own process; the child reports records, seconds and peak RSS, the emulator the rest."""
        self.count += 1
        workdir = self.home / f"{self.size}-{self.count}-{tool}"
        workdir.mkdir()
        out = workdir / ("dlt" if tool == "dlt" else f"{tool}.jsonl")
        command, env = self.command(tool, out)
        pid = self.emulator.process.pid if self.emulator.process else 0
        before, cpu, started = self.emulator.client.stats(), process_cpu_seconds(pid), time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        child_s = time.perf_counter() - started
        cpu, after = process_cpu_seconds(pid) - cpu, self.emulator.client.stats()
        shutil.rmtree(workdir)  # a million orders is ~850 MB of JSON Lines
        if done.returncode:
            raise RuntimeError(f"{tool} failed:\n{done.stderr[-3000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        if result["records"] != self.size:
            raise RuntimeError(f"{tool} wrote {result['records']} records of {self.size}")

        def grew(*keys: str) -> int:
            old, new = before, after
            for key in keys:
                old, new = old.get(key, 0), new.get(key, 0)
            return int(new) - int(old)

        return result | {
            "child_s": child_s,
            "requests": grew("requests_by_route", API_ROUTE),
            "refreshes": grew("token_grants", "refresh_token"),
            "unauthorized": grew("requests", "401"),
            "invalid_grant": grew("invalid_grant"),
            "emulator_cpu_s": cpu,
        }

    def refresh_check(self, tools: list[str], ttl: float) -> list[dict[str, Any]]:
        """Exports lasting several short access-token lives: how many refreshes each concurrency makes."""
        rows = []
        try:
            self.emulator.client.configure(access_token_ttl=ttl)
            for tool in tools:
                # A fresh short-lived token, so each export starts from the same point in a token's life.
                run_python("from airflow_provider_sage200.hooks.sage200 import Sage200Hook\nSage200Hook().refresh()", self.env)  # fmt: skip
                rows.append(self.measure(tool) | {"tool": tool, "ttl": ttl})
        finally:
            self.emulator.client.configure(access_token_ttl=3600)
            run_python("from airflow_provider_sage200.hooks.sage200 import Sage200Hook\nSage200Hook().refresh()", self.env)  # fmt: skip
        return rows


def summarise(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of every figure over the runs; records/s from the median wall time."""
    median = {key: statistics.median(s[key] for s in samples) for key in samples[0]}
    median["records_per_s"] = median["records"] / median["seconds"]
    median["samples_s"] = [round(s["seconds"], 3) for s in samples]
    return median


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000,1000000", help="sales orders, comma separated")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="injected per request (default 50)")
    parser.add_argument("--runs", type=int, default=3, help="runs per size below 1,000,000 (default 3)")
    parser.add_argument(
        "--runs-large", type=int, default=3, help="runs per size of 1,000,000 and more (default 3)"
    )
    parser.add_argument("--tools", default=",".join(TOOLS), help=f"any of {', '.join(TOOLS)}")
    parser.add_argument(
        "--refresh-ttl",
        type=float,
        default=12.0,
        help="access-token life in seconds for the refresh check (default 12; the hook refreshes at half-life)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke test: 3,000 orders, one run, report under results/"
    )
    parser.add_argument("--output", help="Markdown report (default docs/performance.md)")
    parser.add_argument("--results", help="raw figures (default benchmarks/results/latest.json)")
    args = parser.parse_args()
    results = REPO / "benchmarks" / "results"
    if args.quick:
        args.sizes, args.runs, args.runs_large = "3000", 1, 1
        args.output = args.output or str(results / "quick.md")
        args.results = args.results or str(results / "quick.json")
    args.output = args.output or str(REPO / "docs" / "performance.md")
    args.results = args.results or str(results / "latest.json")
    return args


def main() -> None:
    args = parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    tools = [t for t in args.tools.split(",") if t]
    if "dlt" in tools and not DLT_PYTHON.exists():
        raise SystemExit(f"dlt is not installed in {DLT_PYTHON.parent.parent}: run `make bench`")
    started = time.monotonic()
    results: dict[str, Any] = {
        "command": "make bench" + (f" BENCH_ARGS='{' '.join(sys.argv[1:])}'" if sys.argv[1:] else ""),
        "latency_ms": args.latency_ms,
        "page_size": PAGE_SIZE,
        "quick": args.quick,
        "sizes": {},
    }
    print("Emulator capacity (no injected latency) ...", flush=True)
    results["emulator"] = capacity(min(max(sizes), 100_000), seconds=3 if args.quick else 8)
    print("Import cost ...", flush=True)
    results["imports"] = import_cost(runs=3 if args.quick else 7)
    with tempfile.TemporaryDirectory(prefix="sage200-bench-") as tmp:
        home = Path(tmp)
        env = airflow_env(home)
        subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True, capture_output=True)  # fmt: skip
        for size in sizes:
            runs = args.runs_large if size >= LARGE else args.runs
            config = EmulatorConfig(
                sop_orders=size, customers=500, latency_ms=args.latency_ms, record_cache=size + 500
            )
            with EmulatorServer(config) as emulator:
                bench = SizeRun(home, env, emulator, size)
                print(f"{size:>9,} warming the emulator's record cache", flush=True)
                bench.measure("provider_k8")  # untimed: every tool then reads the same warm emulator
                samples: dict[str, list[dict[str, Any]]] = {t: [] for t in tools}
                for run in range(runs):
                    for tool in tools:
                        result = bench.measure(tool)
                        samples[tool].append(result)
                        print(f"{size:>9,} run {run + 1}/{runs} {tool:<17} {result['seconds']:7.2f}s "
                              f"{result['peak_rss_mb']:6.0f} MB {result['requests']:>5} requests "
                              f"{result['refreshes']} refreshes, emulator CPU "
                              f"{result['emulator_cpu_s'] / result['seconds']:4.0%}", flush=True)  # fmt: skip
                entry: dict[str, Any] = {"runs": runs, "tools": {t: summarise(s) for t, s in samples.items()}}
                if size == min(sizes, key=lambda s: abs(s - 100_000)):
                    print(f"{size:>9,} refresh check, {args.refresh_ttl:.0f} s access tokens", flush=True)
                    checked = [t for t in PROVIDER_K if t in tools]
                    entry["refresh_check"] = bench.refresh_check(checked, args.refresh_ttl)
                results["sizes"][str(size)] = entry
    results["minutes"] = (time.monotonic() - started) / 60
    Path(args.results).parent.mkdir(parents=True, exist_ok=True)
    Path(args.results).write_text(json.dumps(results, indent=2))
    write_report(results, Path(args.output))
    print_summary(results)
    print(f"\nwrote {args.output} and {args.results} in {results['minutes']:.0f} min")


if __name__ == "__main__":
    main()
