"""dlt's ``rest_api`` source with an offset paginator, loading JSONL to a local filesystem destination.

Runs in its own virtual environment (``benchmarks/.venv-dlt``, without Airflow):
``python benchmarks/dlt_export.py OUT_DIR`` with ``BENCH_API_URL``, ``BENCH_TOKEN``, ``BENCH_SITE`` and
``BENCH_COMPANY`` set. Prints the same JSON line as ``benchmarks.exporters``; the time covers the whole
``pipeline.run`` (extract, normalize, load), which is what a dlt user waits for.
"""

from __future__ import annotations

import gzip
import json
import os
import resource
import sys
import time
from pathlib import Path

import dlt
from dlt.sources.helpers.rest_client.paginators import OffsetPaginator
from dlt.sources.rest_api import rest_api_source

PAGE_SIZE = 500


def main() -> None:
    out = Path(sys.argv[1])
    source = rest_api_source(
        {
            "client": {
                "base_url": os.environ["BENCH_API_URL"],
                "headers": {
                    "Authorization": f"Bearer {os.environ['BENCH_TOKEN']}",
                    "X-Site": os.environ["BENCH_SITE"],
                    "X-Company": os.environ["BENCH_COMPANY"],
                },
                "paginator": OffsetPaginator(
                    limit=PAGE_SIZE,
                    offset_param="$skip",
                    limit_param="$top",
                    total_path=None,  # Sage 200 returns a bare array: stop at the first empty page
                    stop_after_empty_page=True,
                ),
            },
            "resources": [
                {
                    "name": "sop_orders",
                    "endpoint": {"path": "sop_orders", "params": {"$orderby": "id"}, "data_selector": "$"},
                    "max_table_nesting": 0,
                }
            ],
        }
    )
    pipeline = dlt.pipeline(
        pipeline_name="sage200_bench",
        destination=dlt.destinations.filesystem(bucket_url=out.as_uri()),
        dataset_name="sage",
        pipelines_dir=str(out / ".dlt"),
    )
    started, cpu = time.perf_counter(), cpu_seconds()
    pipeline.run(source, loader_file_format="jsonl")
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    records = 0
    for path in (out / "sage" / "sop_orders").rglob("*.jsonl*"):
        opener = gzip.open if path.read_bytes()[:2] == b"\x1f\x8b" else open
        with opener(path, "rt") as handle:
            records += sum(1 for _ in handle)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"records": records, "seconds": seconds, "cpu_s": cpu, "peak_rss_mb": peak_mb}))


def cpu_seconds() -> float:
    """CPU of this process and of any worker processes dlt started (normalize may use a process pool)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


if __name__ == "__main__":
    main()
