"""API Gateway proxy responses, with CORS headers and uniform error bodies.

Browsers only hand a cross-origin response to the page when it carries
``Access-Control-Allow-Origin`` for the page's origin, so every response
echoes the request's ``Origin`` when it is in ``ALLOWED_ORIGINS`` (the same
comma-separated list the ``cors`` function answers preflights from). Origins
are never answered with ``*``: the API uses cookies, and browsers refuse
``*`` on credentialed requests.

``api_handler`` wraps a handler so it can simply raise ``shared.errors``
exceptions: each becomes a JSON error response with its status code, and
anything unexpected becomes a logged 500 that reveals nothing.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from decimal import Decimal
from http.cookies import SimpleCookie
from typing import Any

from shared.config import env_list
from shared.errors import AppError
from shared.logging_utils import bind_lambda_context
from shared.request import get_header

logger = logging.getLogger(__name__)

Event = dict[str, Any]
Response = dict[str, Any]


def cors_headers(event: Event | None) -> dict[str, str]:
    """CORS headers for a response to ``event``: empty unless its Origin is allowed."""
    origin = get_header(event, "Origin") if event else None
    if not origin or origin.rstrip("/") not in {o.rstrip("/") for o in env_list("ALLOWED_ORIGINS")}:
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Credentials": "true",
        "Vary": "Origin",
    }


def _json_default(value: Any) -> Any:
    # DynamoDB returns every number as Decimal.
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def build_response(
    status: int,
    body: str = "",
    *,
    event: Event | None = None,
    headers: dict[str, str] | None = None,
    cookies: list[str] | None = None,
) -> Response:
    """A proxy-integration response; ``cookies`` are full Set-Cookie values."""
    response: Response = {
        "statusCode": status,
        "headers": {**cors_headers(event), **(headers or {})},
        "body": body,
    }
    if cookies:
        # Several Set-Cookie headers need multiValueHeaders in payload format 1.0.
        response["multiValueHeaders"] = {"Set-Cookie": cookies}
    return response


def json_response(status: int, payload: Any, event: Event | None = None) -> Response:
    body = json.dumps(payload, default=_json_default)
    return build_response(status, body, event=event, headers={"Content-Type": "application/json"})


def error_response(error: AppError, event: Event | None = None) -> Response:
    payload = {"error": {"code": error.code, "message": error.client_message}}
    return json_response(error.status_code, payload, event)


def set_cookie(
    name: str, value: str, *, max_age: int, path: str = "/", same_site: str = "Lax"
) -> str:
    """A Set-Cookie value for a cookie scripts cannot read and only HTTPS carries."""
    cookie: SimpleCookie = SimpleCookie()
    cookie[name] = value
    morsel = cookie[name]
    morsel["max-age"] = max_age
    morsel["path"] = path
    morsel["samesite"] = same_site
    morsel["secure"] = True
    morsel["httponly"] = True
    return morsel.OutputString()


def api_handler(handler: Callable[[Event, Any], Response]) -> Callable[[Event, Any], Response]:
    """Turn raised AppErrors into error responses and anything else into a bare 500."""

    @functools.wraps(handler)
    def wrapper(event: Event, context: Any) -> Response:
        bind_lambda_context(context)
        try:
            return handler(event, context)
        except AppError as error:
            level = logging.ERROR if error.status_code >= 500 else logging.WARNING
            logger.log(level, "request failed: %s", error, extra={"status": error.status_code})
            return error_response(error, event)
        except Exception:
            logger.exception("unhandled error")
            return error_response(AppError(), event)

    return wrapper
