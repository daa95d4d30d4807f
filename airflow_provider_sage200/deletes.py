"""Hard-delete detection: compare the keys Sage holds now with the previous run's snapshot of them.

Sage 200's API has no tombstones: a deleted record simply stops being returned. With ``detect_deletes=True`` the
export also reads every key of the resource (``$select=<key>``, paged by key: cheap, and exact while records
change, since a record's key never does), keeps them in a snapshot beside the output
(``<directory>/<resource>.keys.json``, one stable name per resource), and writes the keys present in the previous
snapshot but gone now to a companion file beside the export (``<export>.deleted.jsonl``, one ``{"<key>": n}`` per
line). Both are written under a temporary name and moved into place, the snapshot last: a run that fails before
the end leaves the previous snapshot, so the next run still reports every deletion since the last good one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from airflow_provider_sage200.outputs import AtomicExport
from airflow_provider_sage200.resources import resource_or_unknown

if TYPE_CHECKING:
    from airflow_provider_sage200.version_compat import ObjectStoragePath


def delete_key(endpoint: str) -> str:
    """The key a deletion is reported by; a resource without one cannot be compared run to run."""
    from airflow_provider_sage200.exceptions import Sage200ConfigError

    resource = resource_or_unknown(endpoint)
    if resource.paging_key() is None:
        raise Sage200ConfigError(
            f"detect_deletes needs a unique key, and {endpoint} has none in the catalogue (it is read by offset); "
            "export it in full instead and replace the previous copy."
        )
    return resource.paging_key() or "id"


def snapshot_path(destination: ObjectStoragePath, endpoint: str) -> ObjectStoragePath:
    return destination.parent / f"{endpoint.replace('/', '_')}.keys.json"


def deleted_path(destination: ObjectStoragePath) -> ObjectStoragePath:
    return destination.parent / f"{destination.name}.deleted.jsonl"


def record_deletes(
    destination: ObjectStoragePath, endpoint: str, key: str, keys: Iterable[int]
) -> dict[str, Any]:
    """Write the companion file and the new snapshot; return ``{"deleted_path", "deleted"}`` for the summary."""
    current = sorted(set(keys))
    snapshot = snapshot_path(destination, endpoint)
    previous: list[int] = json.loads(snapshot.read_text())[0]["keys"] if snapshot.exists() else []
    gone = sorted(set(previous) - set(current))
    companion = deleted_path(destination)
    with AtomicExport(companion, "jsonl") as export:
        export.write_page([{key: value} for value in gone])
    with AtomicExport(snapshot, "json") as export:
        export.write_page([{"key": key, "keys": current}])
    return {"deleted_path": str(companion), "deleted": len(gone), "snapshot_path": str(snapshot)}
