"""Apache Airflow provider for the Sage 200 (UK & Ireland) accounting API."""

from __future__ import annotations

__version__ = "0.1.0"
