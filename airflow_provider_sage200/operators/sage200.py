"""Operators for Sage 200: paged exports, single calls and writes, and token refresh."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_sage200.connection import DEFAULT_CONN_ID
from airflow_provider_sage200.exceptions import Sage200ConfigError
from airflow_provider_sage200.intervals import add_window_to_context, export_window
from airflow_provider_sage200.odata import interval_filter
from airflow_provider_sage200.parallel import DEFAULT_MAX_CONCURRENCY, validate_max_concurrency
from airflow_provider_sage200.query import (
    DEFAULT_PAGE_SIZE,
    and_filters,
    paging_mode,
    validate_endpoint,
    validate_page_size,
    validate_query,
)
from airflow_provider_sage200.resources import incremental_field_for, resource_or_unknown
from airflow_provider_sage200.version_compat import BaseOperator

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage

    from airflow_provider_sage200.hooks.sage200 import Sage200Hook
    from airflow_provider_sage200.version_compat import Context

DEFAULT_XCOM_RECORD_LIMIT = 10_000


def _hook(conn_id: str) -> Sage200Hook:
    # Imported when a task runs, not when a DAG file is parsed: the hook pulls in requests and oauthlib.
    from airflow_provider_sage200.hooks.sage200 import Sage200Hook

    return Sage200Hook(conn_id)


class Sage200GetOperator(BaseOperator):
    """Export a Sage 200 collection (or read one record), page by page, to a file or to XCom.

    Pages are read by key (``$orderby=id`` and ``id gt <last id>``), so records that change while the export
    runs are neither skipped nor repeated; with your own ``$orderby`` (another field) or ``$skip`` the
    operator pages by offset instead (see docs/reference.md for the trade-off).

    :param endpoint: collection (``sop_orders``), record (``sop_orders/123``) or nested path
        (``customers/7/sop_orders``), relative to the API base URL. (templated)
    :param query: OData options: ``$filter``, ``$select``, ``$orderby``, ``$expand``, ``$top`` (caps the total),
        ``$skip``, ``$count``. Build ``$filter`` with :mod:`airflow_provider_sage200.odata`. (templated)
    :param sage200_conn_id: the ``sage200`` connection. (templated)
    :param output_uri: write records here (a path or any ``ObjectStoragePath`` URI, e.g.
        ``s3://bucket/sage/{{ sage200_window_start | ds }}.jsonl``) instead of returning them; streamed in
        constant memory and moved into place only when complete. (templated; ``sage200_window_start`` and
        ``sage200_window_end`` are the window the export reads, see :mod:`airflow_provider_sage200.intervals`)
    :param output_format: ``jsonl`` (default), ``json``, ``csv`` or ``parquet`` (needs pyarrow).
    :param incremental_field: e.g. ``date_time_updated``: restrict to the run's data interval
        ``[data_interval_start, data_interval_end)``, combined with your ``$filter``. ``True``: the resource's
        own field from the catalogue (an error naming its date fields when it has none); ``"auto"``: that field
        where the resource has one, else a full export (for ``.partial(...).expand(endpoint=[...])``).
    :param lookback: with ``incremental_field``, re-read ``[data_interval_start - lookback, data_interval_end)``
        so records committed late (their ``date_time_updated`` earlier than the moment they became visible) are
        not missed. Intervals then overlap: the result is at-least-once, so deduplicate on the resource's key
        (``id`` or its own key, see docs/reference.md) keeping the latest ``date_time_updated``.
    :param detect_deletes: with ``output_uri``, also read every key of the resource and write the keys deleted
        since the previous run to ``<output>.deleted.jsonl`` (summary: ``deleted_path``, ``deleted``); the keys are
        kept in ``<resource>.keys.json`` beside the output. See :mod:`airflow_provider_sage200.deletes`.
    :param page_size: records per request (1-5000).
    :param max_concurrency: requests in flight at once when paging by key (1-16, default 4): the id space is
        split into ranges read in parallel and written in ``id`` order. Halves itself while Sage answers 429
        or 503. Offset paging (your own ``$orderby`` or ``$skip``) and a ``$top`` cap read sequentially.
    :param xcom_record_limit: without ``output_uri``, refuse to push more records than this to XCom.

    With ``outlets``, each Asset's event carries the export's ``extra`` (path, records, bytes, data interval: see
    :mod:`airflow_provider_sage200.assets`); with the OpenLineage provider installed, the run emits the resource
    and the file as datasets (see :mod:`airflow_provider_sage200.openlineage`).
    """

    template_fields: Sequence[str] = ("sage200_conn_id", "endpoint", "query", "output_uri")
    template_fields_renderers = {"query": "json"}
    ui_color = "#00d639"

    def __init__(
        self,
        *,
        endpoint: str,
        query: Mapping[str, Any] | None = None,
        sage200_conn_id: str = DEFAULT_CONN_ID,
        output_uri: str | None = None,
        output_format: str = "jsonl",
        incremental_field: str | bool | None = None,
        lookback: timedelta | None = None,
        detect_deletes: bool = False,
        page_size: int = DEFAULT_PAGE_SIZE,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        xcom_record_limit: int = DEFAULT_XCOM_RECORD_LIMIT,
        progress_interval: float = 30.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        from airflow_provider_sage200.outputs import check_format_name

        check_format_name(output_format)
        self.endpoint = endpoint
        self.query = query
        self.sage200_conn_id = sage200_conn_id
        self.output_uri = output_uri
        self.output_format = output_format
        self.incremental_field = incremental_field
        if lookback is not None and (not isinstance(lookback, timedelta) or lookback < timedelta(0)):
            raise Sage200ConfigError(
                f"lookback is {lookback!r}; give a timedelta of 0 or more, e.g. timedelta(hours=1)."
            )
        if lookback and not incremental_field:
            raise Sage200ConfigError(
                "lookback only applies to incremental exports; set incremental_field too."
            )
        self.lookback = lookback or timedelta(0)
        if detect_deletes and not output_uri:
            raise Sage200ConfigError(
                "detect_deletes writes a companion file beside the export; set output_uri."
            )
        self.detect_deletes = detect_deletes
        self.page_size = validate_page_size(page_size)
        self.max_concurrency = validate_max_concurrency(max_concurrency)
        self.xcom_record_limit = xcom_record_limit
        self.progress_interval = progress_interval

    @cached_property
    def hook(self) -> Sage200Hook:
        return _hook(self.sage200_conn_id)

    def _do_render_template_fields(
        self, parent: Any, template_fields: Any, context: Any, *args: Any, **kwargs: Any
    ) -> None:
        # Both a task and a mapped task's expansion render through here (a mapped task skips
        # render_template_fields), on every Airflow line.
        add_window_to_context(context)
        super()._do_render_template_fields(parent, template_fields, context, *args, **kwargs)

    def effective_query(self, context: Context) -> dict[str, str]:
        """The user's query, validated, with the data-interval restriction added when incremental."""
        validate_endpoint(self.endpoint)
        query = validate_query(self.query)
        if "$count" in query and self.output_uri:
            raise Sage200ConfigError(
                "$count returns a number, not records; it cannot be written to output_uri."
            )
        field = incremental_field_for(self.endpoint, self.incremental_field)
        if field:
            start, end = export_window(context)
            query["$filter"] = and_filters(
                query.get("$filter"), interval_filter(field, start - self.lookback, end)
            )
        return query

    def execute(self, context: Context) -> Any:
        query = self.effective_query(context)
        self._log_start(context, query)
        if "$count" in query:
            from airflow_provider_sage200.query import record_count

            return record_count(self.hook.send(self.endpoint, query=query), self.endpoint)
        result = self._export_to_file(query) if self.output_uri else self._export_to_xcom(query)
        self._announce(context, query, result)
        return result

    def _log_start(self, context: Context, query: dict[str, str]) -> None:
        """One line saying what this export reads: the resource, its filter, the window and where it goes."""
        if incremental_field_for(self.endpoint, self.incremental_field):
            start, end = export_window(context)
            window = f"changes in [{(start - self.lookback).isoformat()}, {end.isoformat()})"
        else:
            window = "no time window (the whole resource)"
        self.log.info(
            "Exporting %s: $filter %s; %s; to %s",
            self.endpoint,
            query.get("$filter") or "none",
            window,
            self.output_uri or "XCom",
        )

    def _announce(self, context: Context, query: dict[str, str], result: Any) -> None:
        """Tell the outlets' Asset events, and later OpenLineage, what this export wrote."""
        from airflow_provider_sage200.assets import annotate_outlet_events, export_event_extra

        summary = (
            result if self.output_uri else {"records": self._progress.records, "pages": self._progress.pages}
        )
        interval: Any = context
        if incremental_field_for(self.endpoint, self.incremental_field):
            # What was read: on a trigger timetable that is the cron period, not the run's empty interval.
            start, end = export_window(context)
            interval = {"data_interval_start": start, "data_interval_end": end}
        extra = export_event_extra(self.endpoint, summary, interval)
        annotate_outlet_events(context, self.outlets, extra)
        self.export_facts = extra | {"paging_mode": paging_mode(self.endpoint, query, self.max_concurrency)}

    def get_openlineage_facets_on_start(self) -> OperatorLineage:
        from airflow_provider_sage200.openlineage import export_lineage

        return export_lineage(self.hook.config, self.endpoint, self.output_uri)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        from airflow_provider_sage200.openlineage import export_lineage

        facts = getattr(self, "export_facts", None)
        return export_lineage(self.hook.config, self.endpoint, self.output_uri, facts)

    def _pages(self, query: dict[str, str], raw_records: bool = False):
        progress = self._progress = _Progress(self.log, self.endpoint, self.progress_interval)
        for page in self.hook.iter_pages(
            self.endpoint,
            query,
            self.page_size,
            max_concurrency=self.max_concurrency,
            raw_records=raw_records,
            on_total=progress.set_total,
        ):
            progress.add(len(page))
            yield page
        progress.done()

    def _export_to_xcom(self, query: dict[str, str]) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        for page in self._pages(query):
            records.extend(page)
            if len(records) > self.xcom_record_limit:
                raise Sage200ConfigError(
                    f"{self.endpoint} returned more than xcom_record_limit={self.xcom_record_limit} records; XCom "
                    "is not meant for bulk data. Set output_uri (e.g. '/data/sage/{{ sage200_window_start | ds }}.jsonl' or an s3:// URI) "
                    "to stream them to a file, or raise xcom_record_limit."
                )
        return records

    def _export_to_file(self, query: dict[str, str]) -> dict[str, Any]:
        from airflow_provider_sage200.columns import Columns
        from airflow_provider_sage200.outputs import AtomicExport
        from airflow_provider_sage200.version_compat import ObjectStoragePath

        destination = ObjectStoragePath(self.output_uri)
        if self.detect_deletes:
            from airflow_provider_sage200.deletes import delete_key

            delete_key(self.endpoint)  # a resource without a key fails here, before anything is written
        records = pages = 0
        resource = resource_or_unknown(self.endpoint)
        typed = (
            Columns(resource.fields_selected(query.get("$select")), self.endpoint) if resource.known else None
        )
        with AtomicExport(destination, self.output_format, typed) as export:
            # JSON formats copy each record's JSON text through: no dict is built for it.
            for page in self._pages(query, raw_records=export.accepts_raw):
                export.write_page(page)
                records += len(page)
                pages += 1
        summary = {
            "path": str(destination),
            "format": self.output_format,
            "records": records,
            "pages": pages,
            "bytes": export.bytes,
            "filter": query.get("$filter"),
            # Fields in the catalogue's schema of this resource (None for a resource the catalogue lacks).
            "fields": len(resource.fields) or None,
        }
        self.log.info(
            "Wrote %s in %s (%s) to %s",
            counted(records, "record"),
            counted(pages, "page"),
            counted(export.bytes, "byte"),
            destination,
        )
        if self.detect_deletes:
            summary |= self._record_deletes(destination)
        return summary

    def _record_deletes(self, destination: Any) -> dict[str, Any]:
        from airflow_provider_sage200.deletes import delete_key, record_deletes

        key = delete_key(self.endpoint)
        keys = self.hook.paginate(
            self.endpoint, {"$select": key}, self.page_size, max_concurrency=self.max_concurrency
        )
        found = record_deletes(destination, self.endpoint, key, (record[key] for record in keys))
        self.log.info(
            "%d %s records deleted since the previous snapshot: %s",
            found["deleted"],
            self.endpoint,
            found["deleted_path"],
        )
        return found


def counted(number: int, noun: str) -> str:
    """``"1 page"``, ``"2 pages"``, ``"20,000 records"``."""
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


class _Progress:
    """Logs pages, records (of the total, when known) and rate at most every ``interval`` seconds."""

    def __init__(self, log: Any, endpoint: str, interval: float) -> None:
        self.log, self.endpoint, self.interval = log, endpoint, interval
        self.started = self.last = time.monotonic()
        self.pages = self.records = 0
        self.total: int | None = None

    def set_total(self, total: int) -> None:
        self.total = total

    def add(self, records: int) -> None:
        self.pages += 1
        self.records += records
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            self._log("progress")

    def done(self) -> None:
        self._log("finished")

    def _log(self, what: str) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        records = counted(self.records, "record")
        if self.total:
            # Records created during the read can take it past the count taken when it was planned.
            records = f"{self.records:,} of {counted(self.total, 'record')} ({min(self.records / self.total, 1):.0%})"
        self.log.info(
            "%s %s: %s, %s, %.0f records/s",
            self.endpoint,
            what,
            counted(self.pages, "page"),
            records,
            self.records / elapsed,
        )


class Sage200Operator(BaseOperator):
    """Make one Sage 200 call (a write, or a single read) and return the parsed response.

    A POST is never repeated after an ambiguous failure (timeout, dropped connection, 5xx): it fails instead,
    so nothing is written twice. To make a create idempotent, look the record up by its natural key first
    (``customers`` by ``reference``, ``products`` by ``code``) and PUT when it exists; see the
    ``sage200_push_records`` example DAG.

    :param endpoint: path relative to the API base URL. (templated)
    :param method: POST (default), PUT, DELETE or GET.
    :param json: request body. (templated)
    :param query: OData options for a GET. (templated)
    :param sage200_conn_id: the ``sage200`` connection. (templated)
    """

    template_fields: Sequence[str] = ("sage200_conn_id", "endpoint", "json", "query")
    template_fields_renderers = {"json": "json", "query": "json"}

    def __init__(
        self,
        *,
        endpoint: str,
        method: str = "POST",
        json: Any = None,
        query: Mapping[str, Any] | None = None,
        sage200_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if method.upper() not in ("GET", "POST", "PUT", "DELETE"):
            raise Sage200ConfigError(f"method {method!r} is not supported; use POST, PUT, DELETE or GET.")
        self.endpoint = endpoint
        self.method = method.upper()
        self.json = json
        self.query = query
        self.sage200_conn_id = sage200_conn_id

    @cached_property
    def hook(self) -> Sage200Hook:
        return _hook(self.sage200_conn_id)

    def execute(self, context: Context) -> Any:
        validate_endpoint(self.endpoint)
        validate_query(self.query)
        if self.method in ("POST", "PUT") and self.json is None:
            raise Sage200ConfigError(f"{self.method} {self.endpoint} needs a json body.")
        return self.hook.send(self.endpoint, self.method, query=self.query, json=self.json)

    def get_openlineage_facets_on_start(self) -> OperatorLineage:
        from airflow_provider_sage200.openlineage import call_lineage

        return call_lineage(self.hook.config, self.endpoint, self.method)


class Sage200RefreshTokenOperator(BaseOperator):
    """Refresh the access token when it is close to expiry, through the rotation-safe path.

    Meant for a maintenance DAG on a short schedule (e.g. every 15 minutes, ``max_active_runs=1``). Returns the
    token status (seconds left on both tokens), never a secret, with ``refreshed`` and a ``reason``: when Sage ID
    refuses an early refresh ("access_token not expired") the task succeeds with ``refreshed: false``, the
    current access token stays in use and the refresh happens once Sage ID allows it.

    :param min_remaining: refresh when the access token has less than this left.
    :param force: refresh regardless of the time left.
    :param sage200_conn_id: the ``sage200`` connection. (templated)
    """

    template_fields: Sequence[str] = ("sage200_conn_id",)

    def __init__(
        self,
        *,
        min_remaining: timedelta = timedelta(minutes=30),
        force: bool = False,
        sage200_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.min_remaining = min_remaining
        self.force = force
        self.sage200_conn_id = sage200_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_sage200.token import refresh_outcome

        hook = _hook(self.sage200_conn_id)
        before = hook.token_status()
        status = hook.refresh(force=self.force, min_remaining=self.min_remaining.total_seconds())
        refreshed, reason = refresh_outcome(before, status)
        self.log.info("%s %s", reason, status.describe().replace("\n", " "))
        return status.to_dict() | {"refreshed": refreshed, "reason": reason}
