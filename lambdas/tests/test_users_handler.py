"""Users CRUD against a moto DynamoDB table, and who may do it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

import users_handler

ADMIN = {"sub": "admin-sub", "groups": "admins"}


def member(sub: str, groups: str = "") -> dict[str, str]:
    """The authorizer context of a signed-in user outside the admins group."""
    return {"sub": sub, "groups": groups}


def request(
    method: str,
    user_id: str | None = None,
    body: Any = None,
    query: dict[str, str] | None = None,
    caller: dict[str, Any] | None = ADMIN,
) -> dict[str, Any]:
    """A payload format 1.0 event; ``caller`` is the authorizer's context (None: no authorizer)."""
    context: dict[str, Any] = {"requestId": "test", "stage": "$default"}
    if caller is not None:
        context["authorizer"] = {
            "principalId": caller.get("sub"),
            "integrationLatency": 1,
            **caller,
        }
    return {
        "httpMethod": method,
        "requestContext": context,
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
def create(users_table: Any, lambda_context: Any) -> Callable[..., dict[str, Any]]:
    def create_user(email: str = "alice@example.com", name: str = "Alice") -> dict[str, Any]:
        status, user = call(request("POST", body={"email": email, "name": name}), lambda_context)
        assert status == 201
        return user

    return create_user


@pytest.fixture
def seed(users_table: Any) -> Callable[[str, str], dict[str, Any]]:
    """Put a user with a chosen user_id (as auth records a member at login: user_id = sub)."""

    def put(user_id: str, name: str) -> dict[str, Any]:
        user = {
            "user_id": user_id,
            "email": f"{name.lower()}@example.com",
            "name": name,
            "created_at": "2025-01-01T00:00:00+00:00",
            "updated_at": "2025-01-01T00:00:00+00:00",
        }
        users_table.put_item(Item=user)
        return user

    return put


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


# --- ownership: who may do what ----------------------------------------------


def test_member_reads_changes_and_deletes_their_own_user(
    seed: Any, users_table: Any, lambda_context: Any
) -> None:
    bob = seed("bob-sub", "Bob")
    me = member("bob-sub")

    assert call(request("GET", "bob-sub", caller=me), lambda_context) == (200, bob)
    status, updated = call(
        request("PATCH", "bob-sub", {"name": "Bob B."}, caller=me), lambda_context
    )
    assert (status, updated["name"]) == (200, "Bob B.")
    assert call(request("DELETE", "bob-sub", caller=me), lambda_context) == (204, None)
    assert users_table.scan()["Items"] == []


@pytest.mark.parametrize(
    "event",
    [
        request("GET", "carol-sub", caller=member("bob-sub")),
        request("PATCH", "carol-sub", {"name": "Mallory"}, caller=member("bob-sub")),
        request("DELETE", "carol-sub", caller=member("bob-sub")),
        # Other groups, and names that only look like it, are not admins.
        request("DELETE", "carol-sub", caller=member("bob-sub", "editors,readers")),
        request("DELETE", "carol-sub", caller=member("bob-sub", "superadmins, admins-readonly")),
        request("DELETE", "carol-sub", caller=member("bob-sub", "Admins")),
    ],
    ids=["get", "patch", "delete", "other-groups", "lookalike-groups", "case"],
)
def test_member_is_forbidden_another_user(
    event: dict[str, Any], seed: Any, users_table: Any, lambda_context: Any
) -> None:
    carol = seed("carol-sub", "Carol")

    status, body = call(event, lambda_context)

    assert status == 403
    assert body["error"]["code"] == "forbidden"
    assert users_table.scan()["Items"] == [carol]


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_member_gets_403_not_404_for_a_user_that_does_not_exist(
    method: str, users_table: Any, lambda_context: Any
) -> None:
    """Whether another user exists is none of a member's business."""
    event = request(
        method, "nobody", {"name": "X"} if method == "PATCH" else None, caller=member("bob-sub")
    )

    assert call(event, lambda_context)[0] == 403
    assert users_table.scan()["Items"] == []


def test_member_list_shows_only_themselves(seed: Any, lambda_context: Any) -> None:
    bob = seed("bob-sub", "Bob")
    seed("carol-sub", "Carol")
    seed("dave-sub", "Dave")

    status, page = call(
        request("GET", query={"limit": "1"}, caller=member("bob-sub")), lambda_context
    )

    assert status == 200
    assert page == {"users": [bob], "next_token": None}


def test_member_list_before_their_first_login_is_empty(seed: Any, lambda_context: Any) -> None:
    seed("carol-sub", "Carol")

    assert call(request("GET", caller=member("bob-sub")), lambda_context) == (
        200,
        {"users": [], "next_token": None},
    )


def test_member_list_checks_paging_like_an_admin(users_table: Any, lambda_context: Any) -> None:
    assert (
        call(request("GET", query={"limit": "0"}, caller=member("bob-sub")), lambda_context)[0]
        == 400
    )


def test_member_may_not_create_users(users_table: Any, lambda_context: Any) -> None:
    event = request("POST", body={"email": "x@example.com", "name": "X"}, caller=member("bob-sub"))

    assert call(event, lambda_context)[0] == 403
    assert users_table.scan()["Items"] == []


@pytest.mark.parametrize("groups", ["admins", "editors,admins", "readers, admins "])
def test_admin_reads_changes_lists_and_deletes_anyone(
    groups: str, seed: Any, users_table: Any, lambda_context: Any
) -> None:
    seed("bob-sub", "Bob")
    carol = seed("carol-sub", "Carol")
    admin = member("alice-sub", groups)

    assert call(request("GET", "carol-sub", caller=admin), lambda_context) == (200, carol)
    assert (
        call(request("PATCH", "carol-sub", {"name": "C."}, caller=admin), lambda_context)[0] == 200
    )
    status, page = call(request("GET", caller=admin), lambda_context)
    assert (status, sorted(user["user_id"] for user in page["users"])) == (
        200,
        ["bob-sub", "carol-sub"],
    )
    assert call(request("DELETE", "bob-sub", caller=admin), lambda_context) == (204, None)
    assert [user["user_id"] for user in users_table.scan()["Items"]] == ["carol-sub"]


def test_payload_format_2_context_under_lambda_is_read(seed: Any, lambda_context: Any) -> None:
    seed("carol-sub", "Carol")
    event = request("DELETE", "carol-sub", caller=None)
    event["requestContext"]["authorizer"] = {"lambda": member("bob-sub")}

    assert call(event, lambda_context)[0] == 403


@pytest.mark.parametrize(
    "authorizer",
    [
        None,
        "admins",
        {},
        {"groups": "admins"},
        {"sub": "", "groups": "admins"},
        {"sub": "  ", "groups": "admins"},
        {"sub": 42, "groups": "admins"},
        {"sub": "carol-sub", "groups": ["admins"]},
        {"lambda": "admins"},
    ],
    ids=[
        "none",
        "string",
        "empty",
        "no-sub",
        "empty-sub",
        "blank-sub",
        "number-sub",
        "list-groups",
        "bad-lambda",
    ],
)
@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_missing_or_invalid_authorizer_context_is_401(
    authorizer: Any, method: str, seed: Any, users_table: Any, lambda_context: Any
) -> None:
    carol = seed("carol-sub", "Carol")
    event = request(method, "carol-sub", {"name": "X"} if method == "PATCH" else None, caller=None)
    if authorizer is not None:
        event["requestContext"]["authorizer"] = authorizer

    status, body = call(event, lambda_context)

    assert status == 401
    assert body["error"]["code"] == "unauthorized"
    assert users_table.scan()["Items"] == [carol]


def test_no_request_context_at_all_is_401(users_table: Any, lambda_context: Any) -> None:
    event = request("GET")
    del event["requestContext"]

    assert call(event, lambda_context)[0] == 401
