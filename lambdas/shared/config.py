"""Reading configuration from environment variables, with clear errors.

Handlers read their settings through these functions at invocation time, never
at import time: the modules must import with no configuration at all (the
build's smoke test does exactly that), and a missing variable should fail the
request with a log line naming the variable rather than crash the import.
"""

from __future__ import annotations

import math
import os

from shared.errors import ConfigurationError


def require_env(name: str) -> str:
    """Return the non-empty value of ``name`` or raise ConfigurationError."""
    value = os.environ.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"missing required environment variable {name}")
    return value


def optional_env(name: str, default: str) -> str:
    """Return the value of ``name``, or ``default`` when unset or empty."""
    return os.environ.get(name, "").strip() or default


def env_list(name: str) -> list[str]:
    """Return the comma-separated values of ``name`` (empty list when unset)."""
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


def env_seconds(name: str, default: float) -> float:
    """Return a positive number of seconds from ``name``, or ``default`` when unset."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"environment variable {name} is not a number: {raw!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise ConfigurationError(f"environment variable {name} must be positive, got {raw!r}")
    return value
