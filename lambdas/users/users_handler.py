"""Users CRUD over a DynamoDB table, behind the JWT authorizer.

Routes (API Gateway HTTP API, Lambda proxy integration, payload format 1.0):
    GET    /users?limit=N&next_token=T   list, paginated (limit 1–100, default 25)
    POST   /users                        create from {"email", "name"} → 201
    GET    /users/{user_id}              read → 200 or 404
    PATCH  /users/{user_id}              change "email" and/or "name" → 200 or 404
    DELETE /users/{user_id}              delete → 204 or 404

Who may do what: the authorizer (lambdas/authorizer) hands the caller's
``sub`` and ``groups`` (comma-separated Cognito groups) to this function in
``requestContext.authorizer``. A caller in the ``admins`` group may do
everything above. Any other caller owns exactly one user, the one whose
``user_id`` is their ``sub`` (the ``auth`` function records it at login):

* GET, PATCH and DELETE of their own user as above; of another user 403,
  decided before the table is read, so the answer does not tell whether
  that user exists;
* GET /users lists only their own user (one item, or none before their
  first login), paging parameters checked as for an admin, no next_token;
* POST /users is 403: it creates a user with a new ``user_id``, that is
  somebody else's.

A request without the authorizer's context or without a ``sub`` in it is
401: it did not come through the authorizer, and nothing is allowed.

Users are items keyed by the string ``user_id`` (a UUID for users created
here, the Cognito ``sub`` for users the ``auth`` function records at login),
with ``email``, ``name``, ``created_at`` and ``updated_at``. Unknown fields
and invalid values are rejected with 400 rather than stored.

Environment:
    USERS_TABLE      required. Name of the DynamoDB users table (partition key ``user_id``, string).
    ALLOWED_ORIGINS  optional. Comma-separated origins that get CORS headers on responses.
    LOG_LEVEL        optional. Default INFO.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from shared import db_utils
from shared.config import require_env
from shared.errors import (
    BadRequestError,
    ForbiddenError,
    MethodNotAllowedError,
    NotFoundError,
    UnauthorizedError,
)
from shared.request import json_body, path_param, query_params
from shared.response import Event, Response, api_handler, build_response, json_response

DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 100
MAX_NAME_LENGTH = 100
MAX_EMAIL_LENGTH = 254  # RFC 5321's limit on a forward path
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
USER_FIELDS = frozenset({"email", "name"})
ADMIN_GROUP = "admins"


@dataclass(frozen=True)
class Caller:
    """Who is calling, as the authorizer says."""

    sub: str
    groups: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return ADMIN_GROUP in self.groups

    def may_access(self, user_id: str) -> bool:
        return self.is_admin or user_id == self.sub


def caller(event: Event) -> Caller:
    """The caller from the authorizer's context; 401 when there is none.

    With payload format 1.0 (what terraform/envs/dev configures) the context
    is ``requestContext.authorizer`` itself; with 2.0 it is under ``lambda``.
    The values are the strings jwt_authorizer.py puts there.
    """
    authorizer = (event.get("requestContext") or {}).get("authorizer")
    if isinstance(authorizer, dict) and isinstance(authorizer.get("lambda"), dict):
        authorizer = authorizer["lambda"]
    if not isinstance(authorizer, dict):
        raise UnauthorizedError("no authorizer context: the route must be behind the authorizer")
    sub, groups = authorizer.get("sub"), authorizer.get("groups", "")
    if not (isinstance(sub, str) and sub.strip()) or not isinstance(groups, str):
        raise UnauthorizedError("the authorizer context has no valid sub and groups")
    return Caller(sub, frozenset(group.strip() for group in groups.split(",") if group.strip()))


def _require_access(who: Caller, user_id: str) -> None:
    if not who.may_access(user_id):
        raise ForbiddenError(f"only an {ADMIN_GROUP} member may access another user")


def _validate_fields(body: dict[str, Any], *, partial: bool) -> dict[str, str]:
    """The user fields in ``body``, checked; all are required unless ``partial``."""
    unknown = sorted(set(body) - USER_FIELDS)
    if unknown:
        raise BadRequestError(f"unknown fields: {', '.join(unknown)}")
    missing = sorted(USER_FIELDS - set(body))
    if missing and not partial:
        raise BadRequestError(f"missing fields: {', '.join(missing)}")
    if not body:
        raise BadRequestError(f"nothing to update: give one of {', '.join(sorted(USER_FIELDS))}")
    fields: dict[str, str] = {}
    if "email" in body:
        email = body["email"]
        if not (
            isinstance(email, str) and len(email) <= MAX_EMAIL_LENGTH and EMAIL_PATTERN.match(email)
        ):
            raise BadRequestError("email must be a valid email address")
        fields["email"] = email
    if "name" in body:
        name = body["name"]
        if not (isinstance(name, str) and 0 < len(name.strip()) <= MAX_NAME_LENGTH):
            raise BadRequestError(
                f"name must be a non-empty string of at most {MAX_NAME_LENGTH} characters"
            )
        fields["name"] = name.strip()
    return fields


def _page_size(params: dict[str, str]) -> int:
    try:
        size = int(params.get("limit", DEFAULT_PAGE_SIZE))
    except ValueError:
        size = 0
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise BadRequestError(f"limit must be an integer from 1 to {MAX_PAGE_SIZE}")
    return size


def list_users(table: Any, event: Event, who: Caller) -> Response:
    params = query_params(event)
    scan: dict[str, Any] = {"Limit": _page_size(params)}
    if params.get("next_token"):
        scan["ExclusiveStartKey"] = db_utils.decode_page_token(params["next_token"])
    if not who.is_admin:
        own = table.get_item(Key={"user_id": who.sub}).get("Item")
        return json_response(200, {"users": [own] if own else [], "next_token": None}, event)
    page = table.scan(**scan)
    last_key = page.get("LastEvaluatedKey")
    next_token = db_utils.encode_page_token(last_key) if last_key else None
    return json_response(200, {"users": page.get("Items", []), "next_token": next_token}, event)


def create_user(table: Any, event: Event, who: Caller) -> Response:
    if not who.is_admin:
        raise ForbiddenError(f"only an {ADMIN_GROUP} member may create users")
    now = db_utils.utc_now()
    user = {
        "user_id": str(uuid.uuid4()),
        **_validate_fields(json_body(event), partial=False),
        "created_at": now,
        "updated_at": now,
    }
    table.put_item(Item=user, ConditionExpression="attribute_not_exists(user_id)")
    return json_response(201, user, event)


def get_user(table: Any, event: Event, user_id: str) -> Response:
    user = table.get_item(Key={"user_id": user_id}).get("Item")
    if user is None:
        raise NotFoundError(f"user {user_id} not found")
    return json_response(200, user, event)


def update_user(table: Any, event: Event, user_id: str) -> Response:
    fields = {**_validate_fields(json_body(event), partial=True), "updated_at": db_utils.utc_now()}
    try:
        result = table.update_item(
            Key={"user_id": user_id},
            ConditionExpression="attribute_exists(user_id)",
            **db_utils.set_attributes(fields),
            ReturnValues="ALL_NEW",
        )
    except table.meta.client.exceptions.ConditionalCheckFailedException:
        raise NotFoundError(f"user {user_id} not found") from None
    return json_response(200, result["Attributes"], event)


def delete_user(table: Any, event: Event, user_id: str) -> Response:
    try:
        table.delete_item(Key={"user_id": user_id}, ConditionExpression="attribute_exists(user_id)")
    except table.meta.client.exceptions.ConditionalCheckFailedException:
        raise NotFoundError(f"user {user_id} not found") from None
    return build_response(204, event=event)


@api_handler
def lambda_handler(event: Event, context: Any) -> Response:
    who = caller(event)
    table = db_utils.table(require_env("USERS_TABLE"))
    method = event.get("httpMethod")
    user_id = path_param(event, "user_id")
    if user_id is None:
        if method == "GET":
            return list_users(table, event, who)
        if method == "POST":
            return create_user(table, event, who)
    elif method in ("GET", "PATCH", "DELETE"):
        _require_access(who, user_id)
        if method == "GET":
            return get_user(table, event, user_id)
        if method == "PATCH":
            return update_user(table, event, user_id)
        if method == "DELETE":
            return delete_user(table, event, user_id)
    raise MethodNotAllowedError(f"{method} is not supported here")
