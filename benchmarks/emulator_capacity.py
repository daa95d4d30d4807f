"""How fast the emulator itself serves pages, so the benchmark can show it is (or is not) what sets the pace.

The emulator is one asyncio process: the injected latency overlaps between requests, but building and encoding
each page does not. ``capacity`` reads every page once (warming the record cache, as the timed runs find it),
then times ``threads`` clients paging by ``$skip`` with no injected latency, and reads the emulator's CPU time
from ``/proc``: CPU milliseconds per page is the figure that matters, since 1000 / that is the most pages per
second one emulator core can serve.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from airflow_provider_sage200.emulator import EmulatorConfig, EmulatorServer

PAGE_SIZE = 500


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, from ``/proc/<pid>/stat``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def access_token(emulator: EmulatorServer) -> str:
    """A token from the emulator's Sage ID by the authorization-code grant (it consents by itself)."""
    config = emulator.config
    redirect = config.redirect_uris[0]
    answer = requests.get(
        emulator.auth_url,
        params={
            "response_type": "code",
            "client_id": config.client_id,
            "redirect_uri": redirect,
            "scope": "openid profile email offline_access",
            "audience": config.audience,
        },
        allow_redirects=False,
        timeout=30,
    )
    code = parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]
    grant = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect}
    grant |= {"client_id": config.client_id, "client_secret": config.client_secret}
    return requests.post(emulator.token_url, data=grant, timeout=30).json()["access_token"]


def capacity(size: int, threads: int = 4, seconds: float = 8.0) -> dict[str, Any]:
    """Pages per second and emulator CPU per page, ``size`` orders, no injected latency, warm cache."""
    with EmulatorServer(EmulatorConfig(sop_orders=size, customers=500, record_cache=size + 500)) as emulator:
        assert emulator.process is not None
        site = emulator.client.sites()[0]
        headers = {
            "Authorization": f"Bearer {access_token(emulator)}",
            "X-Site": site["site_id"],
            "X-Company": str(site["company_id"]),
        }
        url = emulator.api_url() + "sop_orders"
        pages = -(-size // PAGE_SIZE)

        def read(session: requests.Session, page: int) -> None:
            params = {"$orderby": "id", "$top": PAGE_SIZE, "$skip": page * PAGE_SIZE}
            session.get(url, params=params, headers=headers, timeout=60).raise_for_status()

        warm = requests.Session()
        for page in range(pages):
            read(warm, page)
        done = [0] * threads
        deadline = time.monotonic() + seconds

        def client(index: int) -> None:
            session, page = requests.Session(), index
            while time.monotonic() < deadline:
                read(session, page % pages)
                done[index] += 1
                page += threads

        cpu, started = process_cpu_seconds(emulator.process.pid), time.perf_counter()
        workers = [threading.Thread(target=client, args=(i,)) for i in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        wall, cpu = time.perf_counter() - started, process_cpu_seconds(emulator.process.pid) - cpu
    requests_made = sum(done)
    return {
        "size": size,
        "threads": threads,
        "requests": requests_made,
        "requests_per_s": requests_made / wall,
        "records_per_s": requests_made * PAGE_SIZE / wall,
        "emulator_cpu_share": cpu / wall,
        "emulator_cpu_ms_per_request": 1000 * cpu / requests_made,
        "max_requests_per_s_one_core": requests_made / cpu,
    }


if __name__ == "__main__":
    import json

    print(json.dumps(capacity(100_000), indent=2))
