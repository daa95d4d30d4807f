"""The defaults of a ``sage200`` connection's fields: for the parser (connection.py) and the form's placeholders.

No imports: the providers manager reads the form (get_provider_info.py) without loading Airflow's task SDK.
"""

from __future__ import annotations

DEFAULT_AUTH_URL = "https://id.sage.com/authorize"
DEFAULT_TOKEN_URL = "https://id.sage.com/oauth/token"
DEFAULT_SCOPE = "openid profile email offline_access"
DEFAULT_AUDIENCE = "s200ukipd/sage200"
DEFAULT_REDIRECT_URI = "http://127.0.0.1:8765/callback"
DEFAULT_REFRESH_TOKEN_LIFETIME_DAYS = 90
API_BASE_URLS = {
    "standard": "https://api.columbus.sage.com/uk/sage200/accounts/v1/",
    "professional": "https://api.columbus.sage.com/uk/sage200extra/accounts/v1/",
}
DEFAULT_EDITION = "professional"
