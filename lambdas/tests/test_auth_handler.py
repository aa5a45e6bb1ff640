"""The OAuth2 callback against a local Cognito (token endpoint + JWKS) and moto DynamoDB."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest

import auth_handler
import world

REDIRECT_URI = "https://api.example.com/auth/callback"
APP_URL = "https://app.example.com/"
CLIENT_SECRET = "client-secret-value-do-not-leak"


@pytest.fixture(autouse=True)
def fresh_jwks_clients() -> Iterator[None]:
    auth_handler._jwks_client.cache_clear()
    yield
    auth_handler._jwks_client.cache_clear()


@pytest.fixture
def pool(cognito: Any, users_table: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Cognito answering the token endpoint with ``pool.answer`` (status, payload)."""
    cognito.answer = (
        200,
        {
            "id_token": cognito.id_token(name="Alice Liddell"),
            "access_token": cognito.access_token(),
            "refresh_token": "opaque-refresh-token",
            "expires_in": 3600,
            "token_type": "Bearer",
        },
    )
    cognito.server.routes["/oauth2/token"] = lambda request: cognito.answer
    monkeypatch.setenv("COGNITO_DOMAIN", cognito.server.url(""))
    monkeypatch.setenv("COGNITO_REDIRECT_URI", REDIRECT_URI)
    monkeypatch.setenv("POST_LOGIN_REDIRECT_URL", APP_URL)
    return cognito


def callback(
    context: Any, state: str | None = "s1", cookie_state: str | None = "s1", **query: str
) -> dict[str, Any]:
    query = {"code": "auth-code-1", **query}
    if state is not None:
        query["state"] = state
    headers = {"Cookie": f"oauth_state={cookie_state}"} if cookie_state else {}
    event = {
        "httpMethod": "GET",
        "path": "/auth/callback",
        "headers": headers,
        "queryStringParameters": query,
        "requestContext": {"stage": "prod", "path": "/prod/auth/callback"},
    }
    return auth_handler.lambda_handler(event, context)


def cookies(response: dict[str, Any]) -> dict[str, str]:
    """Set-Cookie values by cookie name."""
    return {value.split("=", 1)[0]: value for value in response["multiValueHeaders"]["Set-Cookie"]}


def token_requests(pool: Any) -> list[Any]:
    return [request for request in pool.server.requests if request.path == "/oauth2/token"]


def test_login_sets_secure_cookies_and_redirects(
    pool: Any, users_table: Any, lambda_context: Any
) -> None:
    response = callback(lambda_context)

    assert response["statusCode"] == 302
    assert response["headers"]["Location"] == APP_URL
    jar = cookies(response)
    for name in ("id_token", "access_token", "refresh_token"):
        assert "Secure" in jar[name]
        assert "HttpOnly" in jar[name]
    assert jar["access_token"].startswith(f"access_token={pool.answer[1]['access_token']};")
    assert "Max-Age=3600" in jar["access_token"]
    assert "Path=/prod/auth;" in jar["refresh_token"]
    assert "SameSite=Strict" in jar["refresh_token"]
    assert "Max-Age=0" in jar["oauth_state"]
    assert pool.answer[1]["access_token"] not in response["body"]


def test_code_exchange_request(pool: Any, lambda_context: Any) -> None:
    callback(lambda_context)

    [request] = token_requests(pool)
    assert request.method == "POST"
    assert parse_qs(request.body.decode()) == {
        "grant_type": ["authorization_code"],
        "client_id": [pool.client_id],
        "code": ["auth-code-1"],
        "redirect_uri": [REDIRECT_URI],
    }
    assert "Authorization" not in request.headers


def test_client_secret_is_sent_as_basic_auth(
    pool: Any, make_secret: Any, monkeypatch: pytest.MonkeyPatch, lambda_context: Any
) -> None:
    monkeypatch.setenv(
        "COGNITO_CLIENT_SECRET_ARN", make_secret("cognito-client-secret", CLIENT_SECRET)
    )

    assert callback(lambda_context)["statusCode"] == 302

    [request] = token_requests(pool)
    expected = base64.b64encode(f"{pool.client_id}:{CLIENT_SECRET}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {expected}"


def test_first_login_creates_the_user_and_later_logins_keep_created_at(
    pool: Any, users_table: Any, lambda_context: Any
) -> None:
    callback(lambda_context)
    first = users_table.get_item(Key={"user_id": world.ALICE["sub"]})["Item"]
    users_table.update_item(
        Key={"user_id": world.ALICE["sub"]},
        UpdateExpression="SET created_at = :old",
        ExpressionAttributeValues={":old": "2020-01-01T00:00:00+00:00"},
    )

    callback(lambda_context)

    user = users_table.get_item(Key={"user_id": world.ALICE["sub"]})["Item"]
    assert first["email"] == "alice@example.com"
    assert first["name"] == "Alice Liddell"
    assert user["created_at"] == "2020-01-01T00:00:00+00:00"
    assert user["last_login_at"] >= first["last_login_at"]


@pytest.mark.parametrize(
    ("state", "cookie_state"),
    [("s1", None), (None, "s1"), ("s1", "s2")],
    ids=["no-cookie", "no-state", "mismatch"],
)
def test_state_must_match_the_cookie(
    state: str | None, cookie_state: str | None, pool: Any, lambda_context: Any
) -> None:
    response = callback(lambda_context, state=state, cookie_state=cookie_state)

    assert response["statusCode"] == 400
    assert token_requests(pool) == []


def test_hosted_ui_error_is_400(pool: Any, lambda_context: Any) -> None:
    response = callback(lambda_context, error="access_denied")

    assert response["statusCode"] == 400
    assert token_requests(pool) == []


def test_missing_code_is_400(pool: Any, lambda_context: Any) -> None:
    assert callback(lambda_context, code="")["statusCode"] == 400


def test_refused_code_is_400(pool: Any, lambda_context: Any) -> None:
    pool.answer = (400, {"error": "invalid_grant"})

    response = callback(lambda_context)

    assert response["statusCode"] == 400
    assert "multiValueHeaders" not in response


@pytest.mark.parametrize(
    "answer",
    [(500, {"error": "internal"}), (200, "not json"), (200, {"access_token": "only"})],
    ids=["server-error", "not-json", "no-id-token"],
)
def test_broken_token_endpoint_is_502(answer: Any, pool: Any, lambda_context: Any) -> None:
    pool.answer = answer

    assert callback(lambda_context)["statusCode"] == 502


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"aud": "another-app-client"}, id="wrong-audience"),
        pytest.param(
            {"iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Other"},
            id="wrong-issuer",
        ),
        pytest.param({"exp": int(time.time()) - 60}, id="expired"),
        pytest.param({"token_use": "access"}, id="wrong-token-use"),
    ],
)
def test_invalid_id_token_is_401_without_cookies(
    claims: dict[str, Any], pool: Any, users_table: Any, lambda_context: Any
) -> None:
    pool.answer = (200, {**pool.answer[1], "id_token": pool.id_token(**claims)})

    response = callback(lambda_context)

    assert response["statusCode"] == 401
    assert "multiValueHeaders" not in response
    assert users_table.scan()["Items"] == []


def test_id_token_signed_by_another_key_is_401(
    pool: Any, foreign_key: Any, lambda_context: Any
) -> None:
    pool.answer = (200, {**pool.answer[1], "id_token": pool.id_token(key=foreign_key)})

    assert callback(lambda_context)["statusCode"] == 401


def test_token_endpoint_timeout_is_503_and_leaks_nothing(
    pool: Any,
    make_secret: Any,
    monkeypatch: pytest.MonkeyPatch,
    lambda_context: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    pool.server.routes["/oauth2/token"] = pool.server.stall()
    monkeypatch.setenv(
        "COGNITO_CLIENT_SECRET_ARN", make_secret("cognito-client-secret", CLIENT_SECRET)
    )
    monkeypatch.setenv("HTTP_TIMEOUT_SECONDS", "0.2")
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")

    response = callback(lambda_context)

    # The stalled route answers 200 only after 5 s: this verdict shows the
    # client's own timeout fired, whatever the machine's load (no clock here).
    assert response["statusCode"] == 503
    assert json.loads(response["body"])["error"]["code"] == "upstream_timeout"
    assert CLIENT_SECRET not in response["body"]
    assert CLIENT_SECRET not in caplog.text
    assert "auth-code-1" not in caplog.text


def test_missing_configuration_is_a_bare_500(
    pool: Any,
    monkeypatch: pytest.MonkeyPatch,
    lambda_context: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.delenv("COGNITO_DOMAIN")

    response = callback(lambda_context)

    assert response["statusCode"] == 500
    assert "COGNITO_DOMAIN" not in response["body"]
    assert "COGNITO_DOMAIN" in caplog.text
