"""Answers CORS preflight requests (OPTIONS) for the API.

Browsers send a preflight before a cross-origin request that carries cookies,
an Authorization header or a JSON body; API Gateway routes ``OPTIONS`` on
every resource here. The function has no layers, so it uses the standard
library only (it cannot import ``shared``), and it is small enough to answer
quickly on a cold start.

An allowed origin gets 204 with the Access-Control-Allow-* headers, echoing
the origin (never ``*``: the API uses cookies, and browsers refuse ``*`` on
credentialed requests). Any other origin gets 403 without them, which makes
the browser block the actual request.

Environment:
    ALLOWED_ORIGINS  required. Comma-separated origins allowed to call the API,
                     e.g. ``https://app.example.com,http://localhost:3000``
                     (scheme://host[:port], no path). The ``shared`` layer's
                     responses read the same variable.
"""

from __future__ import annotations

import logging
import os
from typing import Any

logger = logging.getLogger(__name__)

ALLOWED_METHODS = "GET, POST, PATCH, DELETE, OPTIONS"
ALLOWED_HEADERS = "Authorization, Content-Type"
# How long a browser may reuse a preflight answer; Chromium caps it at 7200 s.
MAX_AGE_SECONDS = 600


def _allowed_origins() -> set[str]:
    raw = os.environ.get("ALLOWED_ORIGINS", "")
    return {origin.strip().rstrip("/") for origin in raw.split(",") if origin.strip()}


def _header(event: dict[str, Any], name: str) -> str | None:
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == name.lower():
            return value
    return None


def _response(status: int, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Vary": "Origin", **(headers or {})}, "body": ""}


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if event.get("httpMethod") != "OPTIONS":
        return _response(405, {"Allow": "OPTIONS"})
    allowed = _allowed_origins()
    if not allowed:
        logger.error("ALLOWED_ORIGINS is not set: refusing every preflight")
        return _response(500)
    origin = _header(event, "Origin")
    if not origin or origin.rstrip("/") not in allowed:
        logger.warning("preflight from a disallowed origin: %r", origin)
        return _response(403)
    return _response(
        204,
        {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": ALLOWED_METHODS,
            "Access-Control-Allow-Headers": ALLOWED_HEADERS,
            "Access-Control-Allow-Credentials": "true",
            "Access-Control-Max-Age": str(MAX_AGE_SECONDS),
        },
    )


# edit
