"""OpenLineage for the Sage 200 operators, as the OpenLineage provider's developer guide asks.

The operators' ``get_openlineage_facets_on_*`` methods import this module when the OpenLineage provider calls
them, so nothing here is imported unless ``apache-airflow-providers-openlineage`` is installed
(``pip install 'airflow-provider-sage200[openlineage]'``). Everything is built from what the task already knows
(the connection, the rendered fields, the export summary): no call to Sage is made for lineage.

Datasets, following the OpenLineage naming spec:

* a Sage 200 resource: namespace ``sage200://<api host>/<site_id>/<company_id>``, name the collection path
  (``sop_orders``; ``customers/7/sop_orders`` for a nested one; a record path names its collection), with a
  ``schema`` facet from the resource catalogue's fields;
* a written file: the file's own namespace and path (``file`` + ``/abs/path``, ``s3://bucket`` + ``key``, ...),
  with an ``outputStatistics`` facet (rows, bytes).

Run facet ``sage200_export``: endpoint, records, pages, paging mode and the data interval.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import attr
from airflow.providers.common.compat.openlineage.facet import (
    Dataset,
    OutputDataset,
    OutputStatisticsOutputDatasetFacet,
    RunFacet,
    SchemaDatasetFacet,
    SchemaDatasetFacetFields,
)
from airflow.providers.openlineage.extractors import OperatorLineage

from airflow_provider_sage200.query import is_record_path

if TYPE_CHECKING:
    from airflow_provider_sage200.connection import Sage200ConnectionConfig

#: Where the run facet's JSON schema is described.
FACET_DOCS = "https://github.com/airflow-provider-sage200/airflow-provider-sage200/blob/main/docs/lineage.md"
# Catalogue field types as OpenLineage schema types.
_OL_TYPES = {
    "int": "integer",
    "decimal": "decimal",
    "str": "string",
    "datetime": "timestamp",
    "bool": "boolean",
    "object": "struct",
    "array": "array",
}


@attr.define
class Sage200ExportRunFacet(RunFacet):
    """What one export read: its endpoint, size, paging mode and data interval."""

    endpoint: str
    records: int | None = None
    pages: int | None = None
    pagingMode: str | None = None
    dataIntervalStart: str | None = None
    dataIntervalEnd: str | None = None

    @staticmethod
    def _get_schema() -> str:
        return f"{FACET_DOCS}#sage200_export"


def namespace(config: Sage200ConnectionConfig) -> str:
    """``sage200://<api host>/<site_id>/<company_id>``: one namespace per Sage 200 company."""
    host = urlsplit(config.api_url).netloc
    return f"sage200://{host}/{config.site_id}/{config.company_id}"


def collection(endpoint: str) -> str:
    """The collection an endpoint reads or writes: ``sop_orders/12`` is in ``sop_orders``."""
    path = endpoint.strip("/")
    return path.rpartition("/")[0] if is_record_path(path) else path


def resource_fields(endpoint: str) -> Mapping[str, str]:
    """The resource catalogue's fields of ``endpoint`` (name -> catalogue type); empty when it is not known."""
    try:
        from airflow_provider_sage200.resources import get_resource
    except ImportError:  # the catalogue is not part of this build
        return {}
    resource = get_resource(endpoint)
    return resource.fields if resource is not None else {}


def resource_dataset(config: Sage200ConnectionConfig, endpoint: str) -> Dataset:
    """The Sage 200 resource as an OpenLineage dataset, with a schema facet when the catalogue knows it."""
    fields = resource_fields(endpoint)
    facets = {}
    if fields:
        facets["schema"] = SchemaDatasetFacet(
            fields=[
                SchemaDatasetFacetFields(name=name, type=_OL_TYPES.get(kind, kind))
                for name, kind in fields.items()
            ]
        )
    return Dataset(namespace=namespace(config), name=collection(endpoint), facets=facets)


def file_dataset(path: str, records: int | None = None, size: int | None = None) -> OutputDataset:
    """A written file as an OpenLineage dataset (naming spec: ``file`` + absolute path, or scheme://bucket + key)."""
    from airflow_provider_sage200.version_compat import ObjectStoragePath

    location = ObjectStoragePath(path)
    if location.protocol in ("", "file", "local"):
        ns, name = "file", "/" + location.key.lstrip("/")
    else:
        ns, name = location.namespace, location.key
    statistics = {}
    if records is not None:
        statistics["outputStatistics"] = OutputStatisticsOutputDatasetFacet(rowCount=records, size=size)
    return OutputDataset(namespace=ns, name=name, outputFacets=statistics)


def export_lineage(
    config: Sage200ConnectionConfig,
    endpoint: str,
    output_uri: str | None,
    run: Mapping[str, Any] | None = None,
) -> OperatorLineage:
    """Lineage of a ``Sage200GetOperator`` run: the resource in, the file out (if any).

    :param run: after the export, what it did: ``path``, ``records``, ``pages``, ``bytes``, ``paging_mode``,
        ``data_interval_start`` and ``data_interval_end``; ``None`` when the task is only starting.
    """
    run = run or {}
    path = run.get("path") or output_uri
    outputs = [file_dataset(path, run.get("records"), run.get("bytes"))] if path else []
    run_facets = {}
    if run:
        run_facets["sage200_export"] = Sage200ExportRunFacet(
            endpoint=endpoint,
            records=run.get("records"),
            pages=run.get("pages"),
            pagingMode=run.get("paging_mode"),
            dataIntervalStart=run.get("data_interval_start"),
            dataIntervalEnd=run.get("data_interval_end"),
        )
    return OperatorLineage(
        inputs=[resource_dataset(config, endpoint)], outputs=outputs, run_facets=run_facets
    )


def call_lineage(config: Sage200ConnectionConfig, endpoint: str, method: str) -> OperatorLineage:
    """Lineage of a ``Sage200Operator`` call: a write (POST, PUT, DELETE) outputs the resource, a GET inputs it."""
    dataset = resource_dataset(config, endpoint)
    if method == "GET":
        return OperatorLineage(inputs=[dataset])
    return OperatorLineage(outputs=[dataset])
