"""The REQUEST authorizer against a locally served JWKS."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest

import jwt_authorizer
import world

METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/users/42"
STAGE_ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/*/*"


@pytest.fixture(autouse=True)
def fresh_jwks_clients() -> Iterator[None]:
    jwt_authorizer._jwks_client.cache_clear()
    yield
    jwt_authorizer._jwks_client.cache_clear()


def authorize(context: Any, token: str | None = None, **headers: str) -> dict[str, Any]:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    event = {"type": "REQUEST", "methodArn": METHOD_ARN, "headers": headers}
    return jwt_authorizer.lambda_handler(event, context)


def effect(policy: dict[str, Any]) -> str:
    [statement] = policy["policyDocument"]["Statement"]
    assert statement["Resource"] == STAGE_ARN
    assert statement["Action"] == "execute-api:Invoke"
    return statement["Effect"]


def test_valid_access_token_is_allowed_with_claims(cognito: Any, lambda_context: Any) -> None:
    groups = {"cognito:groups": ["admins", "staff"]}
    policy = authorize(lambda_context, cognito.access_token(**groups))

    assert effect(policy) == "Allow"
    assert policy["principalId"] == world.ALICE["sub"]
    assert policy["context"] == {
        "sub": world.ALICE["sub"],
        "username": "alice",
        "scope": "openid email",
        "client_id": cognito.client_id,
        "groups": "admins,staff",
    }
    assert all(isinstance(value, str) for value in policy["context"].values())


def test_token_from_the_auth_cookie_is_accepted(cognito: Any, lambda_context: Any) -> None:
    cookie = f"theme=dark; access_token={cognito.access_token()}"

    assert effect(authorize(lambda_context, cookie=cookie)) == "Allow"


def test_jwks_is_fetched_once_per_container(cognito: Any, lambda_context: Any) -> None:
    for _ in range(3):
        assert effect(authorize(lambda_context, cognito.access_token())) == "Allow"

    assert len(cognito.server.requests) == 1


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"exp": int(time.time()) - 60}, id="expired"),
        pytest.param({"exp": None}, id="no-expiry"),
        pytest.param(
            {"iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Other"},
            id="wrong-issuer",
        ),
        pytest.param({"client_id": "another-app-client"}, id="wrong-client"),
        pytest.param({"token_use": "id"}, id="id-token-use"),
        pytest.param({"token_use": None}, id="no-token-use"),
        pytest.param({"aud": world.CLIENT_ID}, id="has-audience"),
    ],
)
def test_bad_claims_are_denied(claims: dict[str, Any], cognito: Any, lambda_context: Any) -> None:
    assert effect(authorize(lambda_context, cognito.access_token(**claims))) == "Deny"


def test_id_token_is_denied(cognito: Any, lambda_context: Any) -> None:
    assert effect(authorize(lambda_context, cognito.id_token())) == "Deny"


def test_token_signed_by_another_key_is_denied(
    cognito: Any, foreign_key: Any, lambda_context: Any
) -> None:
    assert effect(authorize(lambda_context, cognito.access_token(key=foreign_key))) == "Deny"


def test_token_with_unknown_key_id_is_denied(cognito: Any, lambda_context: Any) -> None:
    token = cognito.sign({"sub": "x", "token_use": "access"}, kid="unknown-kid")

    assert effect(authorize(lambda_context, token)) == "Deny"


def test_unsigned_token_is_denied(cognito: Any, lambda_context: Any) -> None:
    claims = jwt.decode(cognito.access_token(), options={"verify_signature": False})
    # PyJWT takes "" for the key of alg "none" (it must be empty), as it takes None.
    token = jwt.encode(claims, "", algorithm="none", headers={"kid": world.KEY_ID})

    assert effect(authorize(lambda_context, token)) == "Deny"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer not.a.jwt"},
    ],
    ids=["none", "empty-bearer", "basic", "garbage"],
)
def test_missing_or_malformed_token_is_denied(
    headers: dict[str, str], cognito: Any, lambda_context: Any
) -> None:
    assert effect(authorize(lambda_context, **headers)) == "Deny"


def test_unreachable_jwks_denies_and_logs_an_error(
    cognito: Any,
    monkeypatch: pytest.MonkeyPatch,
    serve: Any,
    lambda_context: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    slow = serve({})
    slow.routes["/jwks.json"] = slow.stall()
    monkeypatch.setenv("JWKS_URL", slow.url("/jwks.json"))
    monkeypatch.setenv("HTTP_TIMEOUT_SECONDS", "0.2")

    assert effect(authorize(lambda_context, cognito.access_token())) == "Deny"

    # No clock here: an ERROR is logged only for a connection failure (the
    # 0.2 s timeout); the stalled route's late 200 {} would be logged at INFO.
    assert any(record.levelname == "ERROR" for record in caplog.records)


def test_missing_configuration_denies(
    cognito: Any,
    monkeypatch: pytest.MonkeyPatch,
    lambda_context: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.delenv("COGNITO_CLIENT_ID")

    assert effect(authorize(lambda_context, cognito.access_token())) == "Deny"
    assert "COGNITO_CLIENT_ID" in caplog.text


def test_issuer_can_come_from_the_pool_id(
    cognito: Any, monkeypatch: pytest.MonkeyPatch, lambda_context: Any
) -> None:
    monkeypatch.delenv("COGNITO_ISSUER")
    monkeypatch.setenv("COGNITO_USER_POOL_ID", world.USER_POOL_ID)

    assert effect(authorize(lambda_context, cognito.access_token())) == "Allow"
