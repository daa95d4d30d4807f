"""Register secrets with the Airflow log masker that guards this process's output.

Inside a task (a worker or ``dag.test()``) every log line, including stdlib logging and ``print``, is redacted by
the Task SDK's masker, which also tells the supervisor; Airflow core's masker is not consulted there (checked on a
real LocalExecutor worker). The API server (the token page), the scheduler and the ``sage200`` command log
through Airflow core's masker, a separate instance since 3.1 (2.11 and 3.0 have one masker).

Each value is registered once per process. Airflow recompiles a masker's whole pattern list for every new secret,
and ``mask_secret`` costs a round trip to the supervisor, so registering the same token on every read adds up
when many workers re-read a rotating token (measured in the 10-minute soak).
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

from airflow_provider_sage200.token import SECRET_FIELDS
from airflow_provider_sage200.version_compat import (
    conf,
    in_task_process,
    mask_secret_in_core,
    mask_secret_in_task,
)

log = logging.getLogger(__name__)

_registered: set[str] = set()
_registered_lock = threading.Lock()
_REMEMBER_AT_MOST = 4096  # then start again: registering a value twice is harmless, only slower


def mask(value: str) -> None:
    """Hide ``value`` from every log this process writes."""
    if not value:
        return
    with _registered_lock:
        if value in _registered:
            return
        if len(_registered) >= _REMEMBER_AT_MOST:
            _registered.clear()
        _registered.add(value)
    mask_secret_in_task(value)
    if not in_task_process():
        mask_secret_in_core(value)


def mask_token(token: dict[str, Any]) -> None:
    """Register every secret in ``token`` with the log masker."""
    for field in SECRET_FIELDS:
        value = token.get(field)
        if isinstance(value, str) and value:
            mask(value)


# The Task SDK logs every message a task sends its supervisor at DEBUG: in dag.test() through an unnamed logger
# (the root level applies), on a real worker through the supervisor's logger "supervisor".
_COMMS_LOGGER = "supervisor"
_debug_warned = False


def comms_logged_at_debug() -> bool:
    """Whether Airflow's ``[logging]`` settings put the Task SDK's supervisor messages in the log (DEBUG)."""
    root = (conf.get("logging", "logging_level", fallback="INFO") or "INFO").strip().upper()
    levels = dict(
        pair.split("=", 1)
        for pair in re.split(r"[\s,]+", conf.get("logging", "namespace_levels", fallback="") or "")
        if "=" in pair
    )
    comms = next((levels[name] for name in levels if _COMMS_LOGGER.startswith(name) and name), root)
    return "DEBUG" in (root, comms.strip().upper())


def warn_if_comms_logged_at_debug() -> None:
    """Warn, once per process, that DEBUG logging puts this provider's secrets in the logs unmasked."""
    global _debug_warned
    if _debug_warned or not comms_logged_at_debug():
        return
    _debug_warned = True
    log.warning(
        "Airflow's [logging] logging_level (or namespace_levels for %r) is DEBUG: Airflow's Task SDK then logs "
        "each message a task sends its supervisor (MaskSecret, PutVariable) unmasked, and they hold the Sage 200 "
        "access and refresh tokens, the client secret and the subscription key. Use INFO in production; see "
        "'Secrets at DEBUG' in the provider's docs/concepts.md.",
        _COMMS_LOGGER,
    )
