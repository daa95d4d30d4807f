"""Trigger that waits, in the triggerer, until a Sage 200 token is healthy. It only reads; it never refreshes.

Refreshing would rotate the refresh token from an event loop that may be re-run on another triggerer;
rotation stays on workers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any, Literal, TypedDict

from airflow_provider_sage200.version_compat import BaseTrigger, TriggerEvent


class Sage200TokenEvent(TypedDict):
    """Payload of the single event the trigger fires."""

    status: Literal["success", "refresh_needed", "timeout", "error"]
    message: str


class Sage200TokenTrigger(BaseTrigger):
    """Poll the token Variable until the token passes the thresholds.

    Fires ``success`` when healthy, ``refresh_needed`` when only a refresh is missing (the worker then
    refreshes), ``timeout`` at ``end_time`` with the last reason, ``error`` when the token cannot be read.

    :param sage200_conn_id: the ``sage200`` connection (for messages).
    :param token_variable: the Variable holding the tokens.
    :param min_access_token_ttl: seconds the access token must have left.
    :param min_refresh_token_ttl: seconds the refresh token must have left before its fixed expiry.
    :param poke_interval: seconds between reads.
    :param end_time: epoch seconds (wall clock: the trigger may resume on another host) to give up at.
    """

    def __init__(
        self,
        sage200_conn_id: str,
        token_variable: str,
        min_access_token_ttl: float,
        min_refresh_token_ttl: float,
        poke_interval: float = 60.0,
        end_time: float | None = None,
    ) -> None:
        super().__init__()
        self.sage200_conn_id = sage200_conn_id
        self.token_variable = token_variable
        self.min_access_token_ttl = min_access_token_ttl
        self.min_refresh_token_ttl = min_refresh_token_ttl
        self.poke_interval = poke_interval
        self.end_time = end_time

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "sage200_conn_id": self.sage200_conn_id,
                "token_variable": self.token_variable,
                "min_access_token_ttl": self.min_access_token_ttl,
                "min_refresh_token_ttl": self.min_refresh_token_ttl,
                "poke_interval": self.poke_interval,
                "end_time": self.end_time,
            },
        )

    def _check(self):
        from airflow_provider_sage200.token import TokenStatus
        from airflow_provider_sage200.token_health import judge
        from airflow_provider_sage200.token_store import VariableTokenStore

        token = VariableTokenStore(self.token_variable).load()
        status = TokenStatus.from_token(self.sage200_conn_id, self.token_variable, token)
        return judge(status, self.min_access_token_ttl, self.min_refresh_token_ttl)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from asgiref.sync import sync_to_async

        from airflow_provider_sage200.exceptions import Sage200Error

        while True:
            # Variable reads are synchronous calls to the supervisor: off the event-loop thread, and through
            # asgiref, whose thread hands the call back to the triggerer's loop. From a plain thread (asyncio's
            # to_thread) Airflow 3.0/3.1's comms ran a second reader on a loop of their own, and the triggerer
            # died with "Response read out of order" (seen on 3.1.8).
            try:
                verdict = await sync_to_async(self._check)()
            except Sage200Error as exc:  # e.g. a Variable that does not hold a token: the worker reports it
                yield TriggerEvent(Sage200TokenEvent(status="error", message=str(exc)))
                return
            if verdict.healthy or verdict.refresh_can_fix:
                status = "success" if verdict.healthy else "refresh_needed"
                yield TriggerEvent(Sage200TokenEvent(status=status, message=verdict.reason))
                return
            if self.end_time is not None and time.time() >= self.end_time:
                yield TriggerEvent(Sage200TokenEvent(status="timeout", message=verdict.reason))
                return
            self.log.info("Sage 200 token not healthy yet: %s", verdict.reason)
            await asyncio.sleep(self.poke_interval)
