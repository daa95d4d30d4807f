"""The HTML of the "Sage 200 tokens" page: what each connection's card shows, styled to sit inside Airflow's UI.

Pure rendering: :mod:`airflow_provider_sage200.plugins.token_page_actions` gathers a :class:`ConnectionView` per
connection and passes them here. Every value is HTML-escaped; no token value ever reaches a view. The page lives
in an iframe of the Airflow UI, so it follows the system's light or dark scheme (``prefers-color-scheme``) with
the UI's system font stack, spacing and button shapes.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from airflow_provider_sage200.token import TokenStatus, login_command

#: What the page says where the CLI's messages say to run ``sage200 auth login``: the card has the button.
CONSENT_HINT = "use Get new token below"


@dataclass
class ConnectionView:
    """What one connection's card shows."""

    conn_id: str
    status: TokenStatus | None = None
    site_id: str | None = None
    company_id: int | None = None
    sites: list[dict[str, Any]] = field(default_factory=list)
    sites_error: str | None = None
    error: str | None = None


def sentence(text: str, conn_id: str) -> str:
    """A provider message as the page shows it: the consent command becomes the button, first letter upper case."""
    command = login_command(conn_id)
    hint = CONSENT_HINT[:1].upper() + CONSENT_HINT[1:]
    text = text.replace(f"Run {command}", hint).replace(f"run {command}", CONSENT_HINT)
    text = text.strip()
    return text[:1].upper() + text[1:] if text else text


def _rich(text: str) -> str:
    """Escaped text with `code` spans as <code>, so no literal backtick reaches the page."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def error_sentence(prefix: str, exc: BaseException, conn_id: str) -> str:
    """``"<prefix>: <what went wrong>."`` from an exception, without its class name."""
    detail = sentence(str(exc), conn_id) or "no detail given"
    return f"{prefix}: {detail}".rstrip(".") + "."


def _badge(view: ConnectionView) -> tuple[str, str]:
    status = view.status
    if view.error or status is None:
        return "bad", "Cannot be read"
    if not status.has_token:
        return "bad", "No token"
    if not status.refresh_token_valid:
        return "bad", "New consent needed"
    if not status.access_token_valid:
        return "warn", "Access token expired"
    return "ok", "Healthy"


def _site_label(site: dict[str, Any]) -> str:
    return (
        f"{site.get('company_name') or 'Company'} (X-Company {site.get('company_id', '')}, "
        f"X-Site {site.get('site_id', '')})"
    )


def _in_use(view: ConnectionView, site: dict[str, Any]) -> bool:
    return (
        view.site_id is not None
        and str(site.get("site_id", "")).lower() == view.site_id.lower()
        and str(site.get("company_id")) == str(view.company_id)
    )


def _uses(view: ConnectionView) -> str:
    e = html.escape
    if view.site_id is None or view.company_id is None:
        source = " from the list below" if view.sites else ""
        return (
            f"<p class='uses warn'>No site and company chosen yet: put a Site ID and Company ID{source} into the "
            "connection (Admin → Connections).</p>"
        )
    known = next((s for s in view.sites if _in_use(view, s)), None)
    if known is not None:
        where = (
            f"<strong>{e(str(known.get('company_name', '')))}</strong> (X-Company {view.company_id}) on "
            f"{e(str(known.get('site_name', '')))} (X-Site {e(view.site_id)})"
        )
    else:
        where = f"X-Company {view.company_id} on X-Site {e(view.site_id)}"
    note = ""
    if view.sites and known is None:
        note = " <span class='warn'>The user cannot reach this pair: choose one from the list below.</span>"
    return f"<p class='uses'>Uses {where}.{note}</p>"


def _hidden(fields: Mapping[str, str] | None) -> str:
    """Hidden inputs for every action form (Airflow 2's CSRF token), escaped."""
    return "".join(
        f"<input type='hidden' name='{html.escape(name)}' value='{html.escape(value)}'>"
        for name, value in (fields or {}).items()
    )


def render_card(view: ConnectionView, hidden_fields: Mapping[str, str] | None = None) -> str:
    """One connection's card.

    :param view: what the card shows.
    :param hidden_fields: name and value of hidden inputs each action form carries (a CSRF token).
    """
    e = html.escape
    hidden = _hidden(hidden_fields)
    tone, label = _badge(view)
    parts = [f"<header><h2>{e(view.conn_id)}</h2><span class='badge {tone}'>{e(label)}</span></header>"]
    if view.error is not None:
        parts.append(f"<p class='error'>{_rich(view.error)}</p>")
    if view.status is not None:
        lines = [_rich(sentence(line, view.conn_id)) for line in view.status.describe().splitlines()]
        parts.append(f"<p class='status'>{'<br>'.join(lines)}</p>")
        parts.append(_uses(view))
    if view.sites:
        items = "".join(
            f"<li{' class=in-use' if _in_use(view, s) else ''}>{e(_site_label(s))}"
            f"{' <span class=tag>in use</span>' if _in_use(view, s) else ''}</li>"
            for s in view.sites
        )
        parts.append(
            f"<p class='label'>Sites and companies this user can reach</p><ul class='sites'>{items}</ul>"
        )
    if view.sites_error is not None:
        parts.append(f"<p class='error'>{_rich(view.sites_error)}</p>")
    q = quote(view.conn_id)
    parts.append(
        "<div class='actions'>"
        f"<form method='post' action='connections/{q}/refresh'>{hidden}"
        "<button class='primary'>Refresh now</button></form>"
        f"<form method='post' action='connections/{q}/authorize'>{hidden}<button>Get new token</button></form></div>"
    )
    return f"<section class='card' data-conn-id='{e(view.conn_id)}'>{''.join(parts)}</section>"


STYLE = """
:root{color-scheme:light dark;--bg:#fff;--fg:#1a202c;--muted:#4a5568;--card:#fff;--border:#e2e8f0;
--primary:#3182ce;--primary-fg:#fff;--primary-hover:#2b6cb0;--ok:#276749;--ok-bg:#c6f6d5;--warn:#975a16;
--warn-bg:#fefcbf;--bad:#9b2c2c;--bad-bg:#fed7d7;--code:#edf2f7}
@media (prefers-color-scheme:dark){:root{--bg:#1a202c;--fg:#f7fafc;--muted:#a0aec0;--card:#2d3748;
--border:#4a5568;--primary:#63b3ed;--primary-fg:#1a202c;--primary-hover:#90cdf4;--ok:#9ae6b4;--ok-bg:#22543d;
--warn:#faf089;--warn-bg:#744210;--bad:#feb2b2;--bad-bg:#742a2a;--code:#4a5568}}
*{box-sizing:border-box}
body{margin:0;padding:24px;background:var(--bg);color:var(--fg);font:14px/1.5 Inter,ui-sans-serif,system-ui,
-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
h1{font-size:24px;font-weight:600;margin:0 0 16px}h2{font-size:18px;font-weight:600;margin:0}
.card{background:var(--card);border:1px solid var(--border);border-radius:8px;padding:16px 20px;margin:0 0 16px;
max-width:960px}
.card header{display:flex;align-items:center;gap:12px;margin-bottom:8px}
.badge{font-size:12px;font-weight:600;border-radius:9999px;padding:2px 10px}
.badge.ok{color:var(--ok);background:var(--ok-bg)}.badge.warn{color:var(--warn);background:var(--warn-bg)}
.badge.bad{color:var(--bad);background:var(--bad-bg)}
p{margin:8px 0}.label{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em;
margin-top:12px}
.uses.warn,span.warn{color:var(--warn)}
ul.sites{margin:4px 0 8px;padding-left:20px}ul.sites li.in-use{font-weight:600}
.tag{font-size:11px;font-weight:600;color:var(--ok);background:var(--ok-bg);border-radius:9999px;padding:1px 8px;
margin-left:6px}
code{background:var(--code);border-radius:4px;padding:1px 4px;font-size:13px}
.actions{display:flex;gap:8px;margin-top:12px}form{margin:0}
button{font:inherit;font-weight:600;border-radius:6px;padding:6px 14px;cursor:pointer;border:1px solid var(--border);
background:transparent;color:var(--fg)}
button:hover{background:var(--border)}button.primary{background:var(--primary);border-color:var(--primary);
color:var(--primary-fg)}button.primary:hover{background:var(--primary-hover)}
.notice{max-width:960px;border-radius:6px;padding:8px 12px;margin:0 0 16px}
p.message{color:var(--ok);background:var(--ok-bg)}p.error{color:var(--bad)}.notice.error{background:var(--bad-bg)}
.empty{color:var(--muted)}
"""


def render_page(
    views: list[ConnectionView],
    message: str | None = None,
    error: str | None = None,
    hidden_fields: Mapping[str, str] | None = None,
) -> str:
    """The whole page: the notice, if any, and a card per connection.

    :param views: the connections' cards, in order.
    :param message: a notice to show (already opened), or None.
    :param error: an error notice to show (already opened), or None.
    :param hidden_fields: name and value of hidden inputs each action form carries (a CSRF token).
    """
    notice = ""
    if message:
        notice = f"<p class='message notice'>{_rich(message)}</p>"
    if error:
        notice = f"<p class='error notice'>{_rich(error)}</p>"
    cards = "".join(render_card(v, hidden_fields) for v in views) or (
        "<p class='empty'>No connections of type sage200 yet: add one under Admin → Connections.</p>"
    )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'><title>Sage 200 tokens</title>"
        f"<style>{STYLE}</style></head><body><h1>Sage 200 tokens</h1>{notice}{cards}</body></html>"
    )
