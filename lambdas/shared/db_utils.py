"""DynamoDB access: a lazy resource, update expressions, pagination tokens, timestamps.

The boto3 resource is created on first use, not at import, so the handler
modules import without configuration or network, and it is then reused by
every invocation of the warm container.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from datetime import UTC, datetime
from typing import Any

import boto3

from shared.errors import BadRequestError


@functools.cache
def _dynamodb() -> Any:
    return boto3.resource("dynamodb")


def table(name: str) -> Any:
    """The boto3 Table resource for table ``name``."""
    return _dynamodb().Table(name)


def utc_now() -> str:
    """The current time as an ISO 8601 UTC string, as stored in items."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def encode_page_token(last_evaluated_key: dict[str, Any]) -> str:
    """An opaque token for the client to continue a paginated read."""
    raw = json.dumps(last_evaluated_key, sort_keys=True, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_page_token(token: str) -> dict[str, str]:
    """The ExclusiveStartKey a token from ``encode_page_token`` stands for; 400 when invalid."""
    try:
        key = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError):
        raise BadRequestError("invalid pagination token") from None
    if not (
        isinstance(key, dict)
        and key
        and all(isinstance(k, str) and isinstance(v, str) for k, v in key.items())
    ):
        raise BadRequestError("invalid pagination token")
    return key


def set_attributes(
    values: dict[str, Any], *, if_absent: dict[str, Any] | None = None
) -> dict[str, Any]:
    """update_item arguments that SET ``values``, and ``if_absent`` only where not yet set.

    Every attribute goes through a ``#name`` placeholder, so reserved words
    such as ``name`` are safe. The keys must be plain attribute names.
    """
    names: dict[str, str] = {}
    placeholders: dict[str, Any] = {}
    assignments: list[str] = []
    for field, value in values.items():
        assignments.append(f"#{field} = :{field}")
        names[f"#{field}"], placeholders[f":{field}"] = field, value
    for field, value in (if_absent or {}).items():
        assignments.append(f"#{field} = if_not_exists(#{field}, :{field})")
        names[f"#{field}"], placeholders[f":{field}"] = field, value
    return {
        "UpdateExpression": "SET " + ", ".join(assignments),
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": placeholders,
    }
