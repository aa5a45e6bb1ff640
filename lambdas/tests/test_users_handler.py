"""Users CRUD against a moto DynamoDB table."""

from __future__ import annotations

import json
from typing import Any

import pytest

import users_handler


def request(
    method: str, user_id: str | None = None, body: Any = None, query: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "httpMethod": method,
        "resource": "/users/{user_id}" if user_id else "/users",
        "headers": {"Content-Type": "application/json"},
        "pathParameters": {"user_id": user_id} if user_id else None,
        "queryStringParameters": query,
        "body": body if body is None or isinstance(body, str) else json.dumps(body),
        "isBase64Encoded": False,
    }


def call(event: dict[str, Any], context: Any) -> tuple[int, Any]:
    response = users_handler.lambda_handler(event, context)
    return response["statusCode"], json.loads(response["body"]) if response["body"] else None


@pytest.fixture
def create(users_table: Any, lambda_context: Any):
    def create_user(email: str = "alice@example.com", name: str = "Alice") -> dict[str, Any]:
        status, user = call(request("POST", body={"email": email, "name": name}), lambda_context)
        assert status == 201
        return user

    return create_user


def test_create_then_get(create: Any, lambda_context: Any) -> None:
    created = create(name="  Alice  ")

    assert created["name"] == "Alice"
    assert created["email"] == "alice@example.com"
    assert created["created_at"] == created["updated_at"]
    status, fetched = call(request("GET", created["user_id"]), lambda_context)
    assert status == 200
    assert fetched == created


def test_update_changes_only_given_fields(create: Any, lambda_context: Any) -> None:
    user = create()

    status, updated = call(request("PATCH", user["user_id"], {"name": "Alice B."}), lambda_context)

    assert status == 200
    assert updated["name"] == "Alice B."
    assert updated["email"] == user["email"]
    assert call(request("GET", user["user_id"]), lambda_context)[1]["name"] == "Alice B."


def test_delete_then_missing(create: Any, lambda_context: Any) -> None:
    user = create()

    response = users_handler.lambda_handler(request("DELETE", user["user_id"]), lambda_context)

    assert response["statusCode"] == 204
    assert call(request("GET", user["user_id"]), lambda_context)[0] == 404


@pytest.mark.parametrize(
    "event",
    [
        request("GET", "no-such-user"),
        request("PATCH", "no-such-user", {"name": "Bob"}),
        request("DELETE", "no-such-user"),
    ],
    ids=["get", "update", "delete"],
)
def test_missing_user_is_404(event: dict[str, Any], users_table: Any, lambda_context: Any) -> None:
    status, body = call(event, lambda_context)

    assert status == 404
    assert body["error"]["code"] == "not_found"
    assert users_table.scan()["Items"] == []  # an update must not create the user


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"email": "a@example.com", "name": ', "not valid JSON"),
        ("", "body is required"),
        ("[1, 2]", "JSON object"),
        ({"name": "Alice"}, "missing fields: email"),
        ({"email": "not-an-email", "name": "Alice"}, "valid email"),
        ({"email": "a@example.com", "name": "   "}, "name must be"),
        ({"email": "a@example.com", "name": "x" * 101}, "name must be"),
        ({"email": "a@example.com", "name": 42}, "name must be"),
        ({"email": "a@example.com", "name": "A", "admin": True}, "unknown fields: admin"),
    ],
)
def test_create_validation_is_400(
    body: Any, message: str, users_table: Any, lambda_context: Any
) -> None:
    status, response = call(request("POST", body=body), lambda_context)

    assert status == 400
    assert message in response["error"]["message"]
    assert users_table.scan()["Items"] == []


def test_update_needs_a_field(create: Any, lambda_context: Any) -> None:
    status, response = call(request("PATCH", create()["user_id"], {}), lambda_context)

    assert status == 400
    assert "nothing to update" in response["error"]["message"]


def test_list_paginates_through_every_user(create: Any, lambda_context: Any) -> None:
    created = {create(email=f"user{i}@example.com", name=f"User {i}")["user_id"] for i in range(5)}
    seen: list[str] = []
    query: dict[str, str] = {"limit": "2"}
    for _ in range(10):
        status, page = call(request("GET", query=query), lambda_context)
        assert status == 200
        assert len(page["users"]) <= 2
        seen += [user["user_id"] for user in page["users"]]
        if not page["next_token"]:
            break
        query = {"limit": "2", "next_token": page["next_token"]}

    assert sorted(seen) == sorted(created)


@pytest.mark.parametrize(
    "query",
    [
        {"limit": "0"},
        {"limit": "101"},
        {"limit": "ten"},
        {"next_token": "garbage!"},
        {"next_token": "W10"},
    ],
)
def test_list_rejects_bad_paging(
    query: dict[str, str], users_table: Any, lambda_context: Any
) -> None:
    assert call(request("GET", query=query), lambda_context)[0] == 400


def test_unsupported_method_is_405(users_table: Any, lambda_context: Any) -> None:
    assert call(request("DELETE"), lambda_context)[0] == 405


def test_missing_table_setting_is_a_bare_500(
    monkeypatch: pytest.MonkeyPatch,
    users_table: Any,
    lambda_context: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.delenv("USERS_TABLE")

    status, body = call(request("GET"), lambda_context)

    assert status == 500
    assert "USERS_TABLE" not in json.dumps(body)
    assert "USERS_TABLE" in caplog.text


def test_responses_carry_cors_headers_for_allowed_origins(
    monkeypatch: pytest.MonkeyPatch, users_table: Any, lambda_context: Any
) -> None:
    monkeypatch.setenv("ALLOWED_ORIGINS", "https://app.example.com")
    allowed = {**request("GET"), "headers": {"Origin": "https://app.example.com"}}
    other = {**request("GET"), "headers": {"Origin": "https://evil.example.com"}}

    assert users_handler.lambda_handler(allowed, lambda_context)["headers"][
        "Access-Control-Allow-Origin"
    ] == ("https://app.example.com")
    assert (
        "Access-Control-Allow-Origin"
        not in users_handler.lambda_handler(other, lambda_context)["headers"]
    )
