"""Reading API Gateway proxy events (payload format 1.0, as the HTTP API sends them).

Header names arrive in whatever case the client sent (HTTP APIs lower-case
them), bodies may be base64-encoded, and cookies come in one ``Cookie``
header: these helpers hide the differences from the handlers.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from shared.errors import BadRequestError


def get_header(event: dict[str, Any], name: str) -> str | None:
    """Return the value of header ``name`` (case-insensitive), or None."""
    wanted = name.lower()
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == wanted:
            return value
    return None


def get_cookie(event: dict[str, Any], name: str) -> str | None:
    """Return the value of cookie ``name`` from the Cookie header, or None.

    Parsed by hand: ``http.cookies.SimpleCookie`` drops every cookie of the
    header when one of them (maybe another application's) is malformed.
    """
    for pair in (get_header(event, "Cookie") or "").split(";"):
        key, separator, value = pair.strip().partition("=")
        if separator and key == name:
            return value
    return None


def query_params(event: dict[str, Any]) -> dict[str, str]:
    return event.get("queryStringParameters") or {}


def path_param(event: dict[str, Any], name: str) -> str | None:
    return (event.get("pathParameters") or {}).get(name)


def body_text(event: dict[str, Any]) -> str:
    """Return the request body as text, decoding API Gateway's base64 if needed."""
    body = event.get("body") or ""
    if not event.get("isBase64Encoded"):
        return body
    try:
        return base64.b64decode(body, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise BadRequestError("request body is not valid base64-encoded UTF-8") from None


def json_body(event: dict[str, Any]) -> dict[str, Any]:
    """Return the body parsed as a JSON object; 400 if it is missing, malformed or not an object."""
    text = body_text(event)
    if not text.strip():
        raise BadRequestError("request body is required")
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        raise BadRequestError("request body is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise BadRequestError("request body must be a JSON object")
    return parsed
