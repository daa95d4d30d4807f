"""One export per process, so each tool's peak RSS is its own: ``python -m benchmarks.exporters KIND OUT [K]``.

KIND is ``provider``, ``http_operator`` or ``floor`` (bare readers: what a page costs before any work).

Prints one JSON line: records written, export seconds (imports and set-up excluded), peak RSS in MB. The connection, the
token Variable's metastore and the emulator come from the environment ``benchmarks.run`` sets up.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

PAGE_SIZE = 500


def export_with_provider(out: Path, max_concurrency: int | None) -> Callable[[], Any]:
    from airflow_provider_sage200.operators.sage200 import Sage200GetOperator

    kwargs: dict[str, Any] = {} if max_concurrency is None else {"max_concurrency": max_concurrency}
    operator = Sage200GetOperator(
        task_id="bench", endpoint="sop_orders", output_uri=str(out), page_size=PAGE_SIZE, **kwargs
    )
    # Set-up, as for the peers: imports, connection and token read before the clock starts.
    from airflow.sdk import ObjectStoragePath

    import airflow_provider_sage200.outputs  # noqa: F401

    ObjectStoragePath(str(out))
    operator.hook.get_access_token()
    return lambda: operator.execute({})


def static_headers(hook: Any) -> dict[str, str]:
    """The headers a hand-written client sends: a bearer token read once (never refreshed) and the site."""
    site_id, company_id = hook.config.require_site()
    return {
        "Authorization": f"Bearer {hook.get_access_token()}",
        "X-Site": site_id,
        "X-Company": str(company_id),
        "Accept": "application/json",
    }


def export_with_http_operator(out: Path) -> Callable[[], Any]:
    """What a user writes without this provider: HttpOperator, a static bearer token and ``$skip`` paging."""
    from urllib.parse import parse_qs, urlsplit

    from airflow.providers.http.operators.http import HttpOperator

    from airflow_provider_sage200.hooks.sage200 import Sage200Hook

    hook = Sage200Hook()
    headers = static_headers(hook)

    def next_page(response) -> dict | None:
        page = response.json()
        if len(page) < PAGE_SIZE:
            return None
        skip = int(parse_qs(urlsplit(response.request.url).query).get("$skip", ["0"])[0])
        return {"data": {"$skip": skip + PAGE_SIZE}}

    def write_jsonl(responses) -> int:
        with out.open("w") as handle:
            for response in responses:
                for record in response.json():
                    handle.write(json.dumps(record) + "\n")
        return len(responses)

    operator = HttpOperator(
        task_id="bench_http",
        http_conn_id="bench_http",
        method="GET",
        endpoint=hook.config.api_url.split("/", 3)[3] + "sop_orders",
        data={"$orderby": "id", "$top": PAGE_SIZE},
        headers=headers,
        pagination_function=next_page,
        response_filter=write_jsonl,
    )
    return lambda: operator.execute({})


def floor_reader(out: Path, concurrency: int) -> Callable[[], Any]:
    """The floor for this machine and emulator: ``concurrency`` threads reading the same id ranges as the provider,
    one keep-alive session each, doing nothing with a page but counting its records (not decoding them).

    Writes the total to ``out``; what it takes is what any client pays here before it does any work.
    """
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import requests

    from airflow_provider_sage200.hooks.sage200 import Sage200Hook
    from airflow_provider_sage200.transport import RAW_RECORDS

    hook = Sage200Hook()
    headers = static_headers(hook)
    url = hook.config.api_url + "sop_orders"
    total = int(hook.send("sop_orders", query={"$count": "true"}))  # ids are dense: 1..total
    local = threading.local()

    def read(page: int) -> int:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        after = page * PAGE_SIZE
        params = {
            "$orderby": "id",
            "$top": PAGE_SIZE,
            "$filter": f"id gt {after} and id le {after + PAGE_SIZE}",
        }
        response = session.get(url, params=params, headers=headers, timeout=60)
        response.raise_for_status()
        return len(RAW_RECORDS.decode(response.content))

    def run() -> None:
        with ThreadPoolExecutor(concurrency) as pool:
            records = sum(pool.map(read, range(-(-total // PAGE_SIZE))))
        out.write_text("\n" * records)

    return run


def main() -> None:
    kind, out = sys.argv[1], Path(sys.argv[2])
    if kind == "provider":
        export = export_with_provider(out, int(sys.argv[3]) if len(sys.argv) > 3 else None)
    elif kind == "http_operator":
        export = export_with_http_operator(out)
    elif kind == "floor":
        export = floor_reader(out, int(sys.argv[3]))
    else:
        raise SystemExit(f"unknown exporter {kind!r}")
    profile = os.environ.get("BENCH_PROFILE")
    if profile:
        export = profiled(
            export,
            Path(f"{profile}.{kind}{'.k' + sys.argv[3] if len(sys.argv) > 3 else ''}.{os.getpid()}.pstats"),
        )
    started, cpu = time.perf_counter(), cpu_seconds()
    export()
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    with out.open() as handle:
        records = sum(1 for _ in handle)
    print(json.dumps({"records": records, "seconds": seconds, "cpu_s": cpu, "peak_rss_mb": peak_rss_mb()}))


def profiled(export: Callable[[], Any], stats: Path) -> Callable[[], Any]:
    """``BENCH_PROFILE=/tmp/prof``: cProfile the export (its main thread only) into ``/tmp/prof.<kind>.<pid>.pstats``."""
    import cProfile

    def run() -> Any:
        with cProfile.Profile() as profile:
            result = export()
        profile.dump_stats(stats)
        return result

    return run


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM; ``ru_maxrss`` is the same figure in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    main()
