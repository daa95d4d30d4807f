"""Command-line options of the emulator, shared by ``python -m airflow_provider_sage200.emulator`` and
``sage200 emulator``."""

from __future__ import annotations

import argparse
import dataclasses
import json

from airflow_provider_sage200.emulator.config import EmulatorConfig

_FLAGS = {
    "access_token_ttl": (float, "access-token lifetime in seconds"),
    "refresh_token_lifetime_days": (float, "refresh-token family lifetime (absolute, from consent)"),
    "reuse_grace": (float, "seconds a rotated-out refresh token is still accepted"),
    "sop_orders": (int, "number of sales orders per company"),
    "customers": (int, "number of customers per company"),
    "products": (int, "number of products per company"),
    "warehouses": (int, "number of warehouses per company"),
    "seed": (int, "data seed"),
    "history_days": (float, "days of history the records span"),
    "data_end": (str, "ISO datetime the data ends at (default: today 00:00 UTC)"),
    "latency_ms": (float, "latency added to every API and token request"),
    "record_cache": (int, "generated records kept in memory (about 2 KB each)"),
    "client_id": (str, "the registered client id"),
    "client_secret": (str, "the registered client secret"),
    "error_style": (str, "401/400 body style: backend or gateway"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: loopback only)")
    parser.add_argument("--port", type=int, default=8200, help="port (default: %(default)s)")
    parser.add_argument("--config-json", help="a JSON file of settings (EmulatorConfig fields)")
    parser.add_argument("--tls-cert", help="serve HTTPS with this PEM certificate (chain) file")
    parser.add_argument("--tls-key", help="the PEM private key of --tls-cert")
    for name, (kind, help_text) in _FLAGS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=None, help=help_text)
    parser.add_argument("--no-reuse-detection", action="store_true", help="do not revoke families on reuse")
    parser.add_argument("--require-pkce", action="store_true", help="require PKCE on the authorization code")


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    data = EmulatorConfig().to_dict()
    if args.config_json:
        with open(args.config_json) as handle:
            data |= json.load(handle)
    for name in _FLAGS:
        value = getattr(args, name)
        if value is not None:
            data[name] = value
    if args.no_reuse_detection:
        data["reuse_detection"] = False
    if args.require_pkce:
        data["require_pkce"] = True
    known = {f.name for f in dataclasses.fields(EmulatorConfig)}
    return EmulatorConfig.from_dict({k: v for k, v in data.items() if k in known})


def run_from_args(args: argparse.Namespace) -> None:
    from airflow_provider_sage200.emulator.server import run

    config = config_from_args(args)
    if bool(args.tls_cert) != bool(args.tls_key):
        raise SystemExit("--tls-cert and --tls-key go together: give both to serve HTTPS, or neither.")
    scheme = "https" if args.tls_cert else "http"
    print(
        f"Sage 200 emulator on {scheme}://{args.host}:{args.port}  (client_id {config.client_id})", flush=True
    )
    run(config, args.host, args.port, (args.tls_cert, args.tls_key) if args.tls_cert else None)
