"""Sensor that gates on, and reports, the health of a Sage 200 connection's tokens."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_sage200.connection import DEFAULT_CONN_ID
from airflow_provider_sage200.exceptions import Sage200AuthError
from airflow_provider_sage200.token_health import TokenVerdict, judge
from airflow_provider_sage200.version_compat import AirflowSensorTimeout, BaseSensorOperator, conf

if TYPE_CHECKING:
    from airflow_provider_sage200.hooks.sage200 import Sage200Hook
    from airflow_provider_sage200.version_compat import Context


class Sage200TokenSensor(BaseSensorOperator):
    """Wait until a Sage 200 token exists and has enough life left on both tokens.

    Succeeds when a token is stored, the access token has at least ``min_access_token_ttl`` left (refreshing it
    to get there when ``allow_refresh``), and the refresh token has at least ``min_refresh_token_ttl`` before its
    fixed expiry. When it fails or times out, the message says exactly what is wrong (missing token, access token
    expired, refresh token expiring in N days on DATE, re-consent via ``sage200 auth login``), so an
    ``on_failure_callback`` notifier (``SmtpNotifier``, Slack, ...) sends a useful alert.

    :param min_access_token_ttl: time the access token must have left.
    :param min_refresh_token_ttl: time the refresh token must have left before its fixed expiry.
    :param allow_refresh: refresh an access token that is too short-lived (on the worker, rotation-safe).
    :param deferrable: wait in the triggerer (which only reads the token, never refreshes it).
    :param sage200_conn_id: the ``sage200`` connection. (templated)
    """

    template_fields: Sequence[str] = ("sage200_conn_id",)

    def __init__(
        self,
        *,
        min_access_token_ttl: timedelta = timedelta(minutes=5),
        min_refresh_token_ttl: timedelta = timedelta(days=10),
        allow_refresh: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        sage200_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.min_access_token_ttl = min_access_token_ttl
        self.min_refresh_token_ttl = min_refresh_token_ttl
        self.allow_refresh = allow_refresh
        self.deferrable = deferrable
        self.sage200_conn_id = sage200_conn_id

    @cached_property
    def hook(self) -> Sage200Hook:
        from airflow_provider_sage200.hooks.sage200 import Sage200Hook

        return Sage200Hook(self.sage200_conn_id)

    def _verdict(self) -> TokenVerdict:
        return judge(
            self.hook.token_status(),
            self.min_access_token_ttl.total_seconds(),
            self.min_refresh_token_ttl.total_seconds(),
        )

    def poke(self, context: Context) -> bool:
        verdict = self._verdict()
        if not verdict.healthy and verdict.refresh_can_fix and self.allow_refresh:
            verdict = self._refresh()
        self.log.info("%s", verdict.reason)
        return verdict.healthy

    def _refresh(self) -> TokenVerdict:
        """Refresh on this worker; fail at once if even a fresh token cannot meet the threshold."""
        try:
            status = self.hook.refresh(force=False, min_remaining=self.min_access_token_ttl.total_seconds())
        except Sage200AuthError as exc:
            raise Sage200AuthError(f"Refreshing the Sage 200 token failed: {exc}") from None
        verdict = self._verdict()
        if verdict.refresh_can_fix:
            raise Sage200AuthError(
                f"Sage ID issues access tokens that live about {status.access_token_seconds_left}s, less than "
                f"min_access_token_ttl ({self.min_access_token_ttl.total_seconds():.0f}s); lower the threshold."
            )
        return verdict

    def execute(self, context: Context) -> Any:
        if self.deferrable:
            if self.poke(context):  # already healthy: one check, no second poke
                return None
            self.defer(
                trigger=self._trigger(),
                method_name="execute_complete",
                timeout=timedelta(seconds=self.timeout),
            )
        try:
            return super().execute(context)
        except AirflowSensorTimeout as exc:
            raise AirflowSensorTimeout(f"{exc} Last check: {self._verdict().reason}") from None

    def _trigger(self):
        from airflow_provider_sage200.triggers.sage200 import Sage200TokenTrigger

        return Sage200TokenTrigger(
            sage200_conn_id=self.sage200_conn_id,
            token_variable=self.hook.config.token_variable,
            min_access_token_ttl=self.min_access_token_ttl.total_seconds(),
            min_refresh_token_ttl=self.min_refresh_token_ttl.total_seconds(),
            poke_interval=self.poke_interval,
            end_time=time.time() + self.timeout,
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> None:
        """Resume after the trigger: refresh on the worker if that is all that is missing."""
        if event["status"] == "success":
            self.log.info("%s", event["message"])
            return
        if event["status"] == "error":
            raise Sage200AuthError(f"Sage 200 token check failed in the triggerer: {event['message']}")
        if event["status"] == "refresh_needed" and self.allow_refresh:
            verdict = self._refresh()
            if verdict.healthy:
                self.log.info("%s", verdict.reason)
                return
            raise Sage200AuthError(verdict.reason)
        raise Sage200AuthError(f"Sage 200 token check failed: {event['message']}")
