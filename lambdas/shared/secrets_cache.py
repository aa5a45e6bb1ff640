"""Secrets Manager access with an in-process cache.

Each warm Lambda container reads a secret once and keeps it for
``TTL_SECONDS``, so a rotated secret is picked up within that time without
calling Secrets Manager (latency, cost, throttling) on every request.
A failure to read a secret surfaces as a non-exposed 500 whose message names
only the secret id and the AWS error code, never a value.

Named ``secrets_cache`` so it cannot shadow the standard library's ``secrets``.
"""

from __future__ import annotations

import functools
import time
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from shared.errors import SecretUnavailableError

TTL_SECONDS = 300.0

_cache: dict[str, tuple[float, str]] = {}


@functools.cache
def _client() -> Any:
    return boto3.client("secretsmanager")


def get_secret(secret_id: str) -> str:
    """The SecretString of ``secret_id`` (name or ARN), cached for TTL_SECONDS."""
    cached = _cache.get(secret_id)
    now = time.monotonic()
    if cached and now - cached[0] < TTL_SECONDS:
        return cached[1]
    try:
        value = _client().get_secret_value(SecretId=secret_id).get("SecretString")
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "unknown")
        raise SecretUnavailableError(f"cannot read secret {secret_id}: {code}") from None
    except BotoCoreError as error:
        raise SecretUnavailableError(
            f"cannot read secret {secret_id}: {type(error).__name__}"
        ) from None
    if not value:
        raise SecretUnavailableError(f"secret {secret_id} has no SecretString")
    _cache[secret_id] = (now, value)
    return value


def clear_cache() -> None:
    """Forget every cached value."""
    _cache.clear()
