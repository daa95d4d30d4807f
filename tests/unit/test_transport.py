from __future__ import annotations

import socket
from email.utils import formatdate

import pytest
import requests

from airflow_provider_sage200.exceptions import Sage200ClientError, Sage200RateLimitError, Sage200ServerError
from airflow_provider_sage200.transport import (
    RetryPolicy,
    error_message,
    parse_retry_after,
    raise_for_response,
    send_with_retries,
    was_not_sent,
)


def response(status: int, body: str = "", headers: dict | None = None) -> requests.Response:
    r = requests.Response()
    r.status_code = status
    r._content = body.encode()
    r.headers.update(headers or {})
    return r


class TestRetryAfter:
    def test_seconds(self):
        assert parse_retry_after("7") == 7.0

    def test_http_date(self):
        assert parse_retry_after(formatdate(1_000_030, usegmt=True), now=1_000_000) == pytest.approx(30)

    @pytest.mark.parametrize("value", [None, "", "soon"])
    def test_unusable(self, value):
        assert parse_retry_after(value) is None


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            '{"Message": "Authorization has been denied for this request."}',
            "Authorization has been denied for this request.",
            id="backend",
        ),
        pytest.param('{"statusCode": 401, "message": "Access denied"}', "Access denied", id="gateway"),
        pytest.param(
            '[{"$message": "Header X-Site was not found"}]', "Header X-Site was not found", id="list"
        ),
        pytest.param("<html><body>502 Bad Gateway</body></html>", "HTML error page", id="html"),
        pytest.param('{"error": "invalid_grant", "error_description": "used"}', "used", id="oauth"),
    ],
)
def test_error_message_normalises_sage_bodies(body, expected):
    assert expected in error_message(response(400, body))


def test_raise_for_response_maps_status_to_class():
    kwargs = {"method": "GET", "endpoint": "sop_orders"}
    assert raise_for_response(response(200, "[]"), **kwargs).status_code == 200
    with pytest.raises(Sage200RateLimitError) as rate:
        raise_for_response(response(429, "{}", {"Retry-After": "3"}), **kwargs)
    assert rate.value.retry_after == 3
    with pytest.raises(Sage200ServerError):
        raise_for_response(response(503), **kwargs)
    with pytest.raises(Sage200ClientError) as client:
        raise_for_response(response(400, '{"Message": "bad $filter"}'), **kwargs)
    assert client.value.status_code == 400
    assert "GET sop_orders" in str(client.value)
    assert "bad $filter" in str(client.value)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_refused_connection_is_provably_not_sent():
    with pytest.raises(requests.ConnectionError) as exc:
        requests.get(f"http://127.0.0.1:{_closed_port()}/", timeout=2)
    assert was_not_sent(exc.value)
    assert not was_not_sent(requests.exceptions.ReadTimeout("read timed out"))


class TestSendWithRetries:
    policy = RetryPolicy(max_attempts=4, backoff_base=0.01, max_elapsed=5)

    def run(self, method, statuses):
        answers = iter(statuses)
        calls = []
        sleeps = []

        def send():
            calls.append(1)
            status = next(answers)
            if isinstance(status, Exception):
                raise status
            answer = response(status, "[]", {"Retry-After": "1"} if status == 429 else {})
            return raise_for_response(answer, method=method, endpoint="x")

        try:
            return (
                send_with_retries(send, method=method, endpoint="x", policy=self.policy, sleep=sleeps.append),
                len(calls),
                sleeps,
            )
        except Exception as exc:  # returned for the assertions below
            return exc, len(calls), sleeps

    def test_get_retries_429_and_5xx_then_succeeds(self):
        result, calls, sleeps = self.run("GET", [429, 503, 502, 200])
        assert result.status_code == 200 and calls == 4
        assert sleeps[0] == 1.0  # Retry-After honoured

    def test_400_is_never_retried(self):
        result, calls, _ = self.run("GET", [400, 200])
        assert isinstance(result, Sage200ClientError) and calls == 1

    def test_post_is_not_retried_after_ambiguous_failure(self):
        result, calls, _ = self.run("POST", [503, 200])
        assert isinstance(result, Sage200ServerError) and calls == 1
        result, calls, _ = self.run("POST", [requests.exceptions.ReadTimeout("timed out"), 200])
        assert isinstance(result, Sage200ServerError) and calls == 1
        assert "not repeated" in str(result)

    def test_post_is_retried_when_provably_not_processed(self):
        result, calls, _ = self.run("POST", [429, requests.exceptions.ConnectTimeout("connect"), 200])
        assert result.status_code == 200 and calls == 3

    def test_attempts_are_bounded(self):
        result, calls, _ = self.run("GET", [503] * 10)
        assert isinstance(result, Sage200ServerError) and calls == 4
        assert "gave up after 4 attempts" in str(result)


def test_any_callable_is_retried_and_its_result_returned():
    """The Sage ID client passes a call that returns a token dict, not a response."""
    answers = iter(
        [
            Sage200RateLimitError(
                "slow", retry_after=0, method="POST", endpoint="oauth/token", status_code=429
            ),
            {"access_token": "x"},
        ]
    )

    def call():
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    policy = RetryPolicy(max_attempts=3, backoff_base=0.01)
    assert send_with_retries(
        call, method="POST", endpoint="oauth/token", policy=policy, sleep=lambda _: None
    ) == {"access_token": "x"}


def test_other_exceptions_are_not_retried():
    calls = []

    def call():
        calls.append(1)
        raise KeyError("not a transport error")

    with pytest.raises(KeyError):
        send_with_retries(call, method="GET", endpoint="x", policy=RetryPolicy(), sleep=lambda _: None)
    assert calls == [1]


def test_unreachable_host_names_the_connection_field():
    def call():
        return requests.get(f"http://127.0.0.1:{_closed_port()}/", timeout=2)

    policy = RetryPolicy(max_attempts=1)
    with pytest.raises(Sage200ServerError, match="check the connection's token_url"):
        send_with_retries(call, method="POST", endpoint="oauth/token", policy=policy, url_field="token_url")
