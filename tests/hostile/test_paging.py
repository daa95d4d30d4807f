"""Hostile paging: capped pages, ignored filters, ids going down or repeating, huge sparse ids, bad shapes.

Each case exports through ``Sage200GetOperator`` (to a file, or XCom) against a :class:`HostileServer` and
asserts the safe outcome: every record exactly once, or a clear error, no output file, few requests.
"""

from __future__ import annotations

import resource

import pytest

from airflow_provider_sage200.exceptions import Sage200ServerError
from airflow_provider_sage200.hooks.sage200 import Sage200Hook
from airflow_provider_sage200.operators.sage200 import Sage200GetOperator
from tests.hostile.server import Collection, HostileServer


def export(tmp_path, concurrency: int, page_size: int = 1000, **kwargs):
    out = tmp_path / "out"
    operator = Sage200GetOperator(
        task_id="export",
        endpoint="sop_orders",
        output_uri=str(out / "orders.jsonl"),
        page_size=page_size,
        max_concurrency=concurrency,
        **kwargs,
    )
    return operator, out


def read_ids(path) -> list[int]:
    import json

    return [json.loads(line)["id"] for line in path.read_text().splitlines()]


@pytest.mark.parametrize("concurrency", [1, 4])
def test_capped_pages_are_not_taken_for_the_end(tmp_path, connect, concurrency):
    """Defect 3: a server capping $top at 500 (older Professional builds), page_size 1000, 3,000 records."""
    with HostileServer(Collection(range(1, 3001), cap=500), max_requests=60) as server:
        connect(server)
        operator, out = export(tmp_path, concurrency)
        summary = operator.execute({})
    assert read_ids(out / "orders.jsonl") == list(range(1, 3001))
    assert summary["records"] == 3000
    assert len(server.requests) <= 12


def test_offset_paging_does_not_assume_the_page_size(tmp_path, connect):
    """Defect 3, offset paging: $skip advances by what arrived, and a short page is not the end."""
    with HostileServer(Collection(range(1, 1201), cap=500), max_requests=20) as server:
        connect(server)
        operator, out = export(tmp_path, 1, query={"$orderby": "document_no"})
        operator.execute({})
    assert read_ids(out / "orders.jsonl") == list(range(1, 1201))
    assert [r.query.get("$skip") for r in server.requests][:3] == [None, "500", "1000"]


@pytest.mark.parametrize(
    ("misbehaviour", "message"),
    [
        pytest.param({"ignore_filter": True}, r"not after the previous page's last id", id="filter-ignored"),
        pytest.param({"descending": True}, r"not in increasing order", id="ids-going-down"),
        pytest.param(
            {"repeat_boundary": True}, r"not after the previous page's last id", id="boundary-repeated"
        ),
    ],
)
@pytest.mark.parametrize("concurrency", [1, 4])
def test_ids_that_do_not_advance_fail_clearly(tmp_path, connect, misbehaviour, message, concurrency):
    """Defect 4: every page's ids strictly increase past the last one, else a clear error and no file."""
    with HostileServer(Collection(range(1, 2001), **misbehaviour), max_requests=40) as server:
        connect(server)
        operator, out = export(tmp_path, concurrency, page_size=100)
        with pytest.raises(Sage200ServerError, match=message):
            operator.execute({})
    assert len(server.requests) <= 3 + 2 * concurrency  # the first page, planning, one window
    assert not out.exists() or list(out.iterdir()) == []


def test_a_range_answered_outside_its_bounds_fails(tmp_path, connect):
    """Defect 4, parallel: a range's page holding ids at or past the range's end is refused."""

    def play(request):
        query = dict(request.query)
        query["$filter"] = query.get("$filter", "").split(" and id lt ")[0]  # drops the upper bound
        request.query = query
        return collection(request)

    collection = Collection(range(1, 3001), count=2800)  # ranges narrower than a page
    with HostileServer(play, max_requests=40) as server:
        connect(server)
        operator, out = export(tmp_path, 4, page_size=100, query={"$select": "id"})
        with pytest.raises(Sage200ServerError, match=r"outside the range asked for"):
            operator.execute({})
    assert not out.exists() or list(out.iterdir()) == []


def test_huge_sparse_ids_keep_the_plan_bounded(tmp_path, connect):
    """Defect 6: highest id 10**12 and $count refused: the plan stays small, the export is exact."""
    ids = [*range(1, 1001), 10**12]
    with HostileServer(Collection(ids, count="refuse"), max_requests=400) as server:
        connect(server)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        operator, out = export(tmp_path, 4, page_size=100)
        operator.execute({})
        grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert read_ids(out / "orders.jsonl") == ids
    assert grown_mb < 200
    assert len(server.requests) < 400


@pytest.mark.parametrize("concurrency", [1, 4])
def test_over_sending_past_top_fails(tmp_path, connect, concurrency):
    """Defect 14: a page holding more records than $top asked for is refused, not written."""
    with HostileServer(Collection(range(1, 3001), over_send=5), max_requests=20) as server:
        connect(server)
        operator, out = export(tmp_path, concurrency, page_size=100)
        with pytest.raises(Sage200ServerError, match=r"105 records for \$top=100"):
            operator.execute({})
    assert not out.exists() or list(out.iterdir()) == []


@pytest.mark.parametrize("output", ["xcom", "jsonl", "csv"])
def test_records_that_are_not_objects_fail(tmp_path, connect, output):
    """Defect 14: a page like [1, 2, 3] is not records."""
    with HostileServer(Collection(range(1, 4), record=lambda i: i), max_requests=10) as server:
        connect(server)
        kwargs = {} if output == "xcom" else {"output_uri": str(tmp_path / "out" / f"x.{output}")}
        operator = Sage200GetOperator(
            task_id="export",
            endpoint="sop_orders",
            max_concurrency=1,
            output_format=output if output != "xcom" else "jsonl",
            **kwargs,
        )
        with pytest.raises(Sage200ServerError, match=r"record 1 of the page is a int, not a JSON object"):
            operator.execute({})
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_a_list_answered_to_count_fails_clearly(connect):
    """Defect 14: `$count` answered with a list is an error naming what arrived, not a TypeError."""
    with HostileServer(Collection(range(1, 10), count=[1, 2]), max_requests=5) as server:
        connect(server)
        operator = Sage200GetOperator(task_id="count", endpoint="sop_orders", query={"$count": True})
        with pytest.raises(Sage200ServerError, match=r"\$count.*a number of records, got list"):
            operator.execute({})
        with pytest.raises(Sage200ServerError, match=r"\$count.*a number of records, got list"):
            list(Sage200Hook().iter_pages("sop_orders", page_size=3, max_concurrency=4))


@pytest.mark.parametrize("concurrency", [1, 4])
def test_emulator_clamping_top_is_read_completely(tmp_path, consented, emulator, concurrency):
    """Defect 3 against the emulator's faithful fault: `$top` silently clamped to 500, as older builds do."""
    emulator.client.configure(max_top=500, top_over_max="clamp")
    operator, out = export(tmp_path, concurrency, page_size=1000, query={"$filter": "id le 3000"})
    summary = operator.execute({})
    assert summary["records"] == 3000
    assert read_ids(out / "orders.jsonl") == [r["id"] for r in emulator.client.truth("sop_orders")][:3000]
