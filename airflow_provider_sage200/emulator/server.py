"""Run the emulator: in this process (``run``), or as a subprocess for tests and demos (``EmulatorServer``),
and drive its control plane (``EmulatorClient``). Imports no web framework until ``run`` is called.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

import requests

from airflow_provider_sage200.emulator.config import EmulatorConfig

EDITION_PATHS = {"standard": "sage200", "professional": "sage200extra"}


def run(
    config: EmulatorConfig,
    host: str = "127.0.0.1",
    port: int = 8200,
    tls: tuple[str, str] | None = None,
) -> None:
    """Serve the emulator until interrupted.

    :param tls: ``(certificate file, key file)`` to serve HTTPS, as Sage does; plain HTTP without it.
    """
    import uvicorn

    from airflow_provider_sage200.emulator.app import make_app

    certfile, keyfile = tls or (None, None)
    uvicorn.run(
        make_app(config),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class EmulatorClient:
    """The emulator's control plane (``/_emulator/...``), for tests and demos.

    :param ca_bundle: the CA file to verify an HTTPS emulator's certificate with.
    """

    def __init__(self, url: str, ca_bundle: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.session = requests.Session()
        self.verify: str | bool = ca_bundle or True

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.session.request(
            method, f"{self.url}/_emulator/{path}", timeout=30, verify=self.verify, **kwargs
        )
        response.raise_for_status()
        return response.json()

    def health(self) -> dict[str, Any]:
        return self._call("GET", "health")

    def reset(self) -> None:
        self._call("POST", "reset")

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "stats")

    def configure(self, **knobs: Any) -> dict[str, Any]:
        return self._call("POST", "config", json=knobs)

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        return self._call("POST", "faults", json=faults)

    def clear_faults(self) -> None:
        self._call("DELETE", "faults")

    def mutate(self, resource: str = "sop_orders", ids=None, count=None, changes=None, company_id: int = 1):
        body = {
            "resource": resource,
            "ids": ids,
            "count": count or 1,
            "changes": changes,
            "company_id": company_id,
        }
        return self._call("POST", "mutate", json=body)["ids"]

    def advance_clock(self, seconds: float) -> float:
        """Move the emulator's clock on; returns its new time (epoch seconds)."""
        return self._call("POST", "clock", json={"advance": seconds})["now"]

    def truth(self, resource: str, company_id: int = 1, fields=("id",)) -> list[dict[str, Any]]:
        return self._call(
            "GET", f"truth/{resource}", params={"company_id": company_id, "fields": ",".join(fields)}
        )

    def sites(self) -> list[dict[str, Any]]:
        return self.truth("sites")

    def issued_tokens(self) -> dict[str, list[str]]:
        return self._call("GET", "issued_tokens")


class EmulatorServer:
    """The emulator in a subprocess on loopback; also a context manager.

    :param config: the emulator's settings.
    :param host: interface to bind (loopback by default).
    :param port: port, or 0 for a free one.
    :param tls: ``(certificate file, key file, CA file)`` to serve HTTPS with a certificate the CA signed.
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: tuple[str, str, str] | None = None,
    ) -> None:
        self.config = config or EmulatorConfig()
        self.host = host
        self.port = port or free_port(host)
        self.tls = tls
        self.process: subprocess.Popen[bytes] | None = None
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the subprocess)

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def auth_url(self) -> str:
        return f"{self.url}/authorize"

    @property
    def token_url(self) -> str:
        return f"{self.url}/oauth/token"

    def api_url(self, edition: str = "professional") -> str:
        return f"{self.url}/uk/{EDITION_PATHS[edition]}/accounts/v1/"

    @property
    def client(self) -> EmulatorClient:
        return EmulatorClient(self.url, self.tls[2] if self.tls else None)

    def start(self, timeout: float = 30) -> EmulatorServer:
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as config_file:
            json.dump(self.config.to_dict(), config_file)
        command = [sys.executable, "-m", "airflow_provider_sage200.emulator", "--host", self.host]
        command += ["--port", str(self.port), "--config-json", config_file.name]
        if self.tls:
            command += ["--tls-cert", self.tls[0], "--tls-key", self.tls[1]]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=self._stderr)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"The emulator exited with code {self.process.returncode}:\n{self._stderr_tail()}"
                )
            try:
                self.client.health()
                os.unlink(config_file.name)
                return self
            except requests.RequestException:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"The emulator did not answer on {self.url} within {timeout:.0f}s:\n{self._stderr_tail()}"
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None

    def _stderr_tail(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")[-3000:]

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
