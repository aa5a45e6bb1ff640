"""Writes the sample events of lambdas/events and their expect.json files.

    python lambdas/events/generate.py           # (re)write them
    python lambdas/events/generate.py --check   # exit 1 when a file is not what it would write

The events are static files: they were written once by this script and only
change when it or the constants in world.py change. The output is
deterministic (RS256 signatures and Twilio's HMAC are), so a run over an
unchanged tree rewrites every file byte for byte. test-signing-key.pem is
created only when it is missing; a new key changes every token below.

Each event is what the HTTP API of terraform/envs/dev sends: payload format
1.0 to the integrations and to the REQUEST authorizer, header names in lower
case, form bodies base64-encoded (an HTTP API encodes every body that is not
text or JSON). Left out for brevity: the multiValueHeaders and
multiValueQueryStringParameters duplicates of headers and
queryStringParameters, and the null fields of requestContext.identity (no
handler reads them).
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import world
from world import API_DOMAIN, BOB, CAROL, DAVE, MEMBERS, MISSING_USER

ISSUED_AT = 1735689600  # 2025-01-01T00:00:00Z
FOREVER = 4102444800  # 2100-01-01T00:00:00Z
REQUEST_TIME = ("01/Jan/2025:12:00:00 +0000", 1735732800000)
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
CLIENT_IP = "203.0.113.10"
TWILIO_IP = "198.51.100.20"
STATE = "5f3c1a9e2b7d4c6f8a0e1d3b5c7a9f2e"
CAPITAL_QUESTION = "What is the capital of France?"

Event = dict[str, Any]
# A status code, or the authorizer's policy effect ("Allow" or "Deny").
Outcome = int | str


def access_token(member: str | None = None, **overrides: Any) -> str:
    return world.sign({**world.access_claims(ISSUED_AT, FOREVER, member), **overrides})


def id_token() -> str:
    return world.sign(world.id_claims(ISSUED_AT, FOREVER))


def forwarded(ip: str) -> dict[str, str]:
    return {
        "host": API_DOMAIN,
        "x-forwarded-for": ip,
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
    }


def browser(**headers: str) -> dict[str, str]:
    return {
        "accept": "application/json",
        "origin": world.ALLOWED_ORIGIN,
        "user-agent": BROWSER,
        **forwarded(CLIENT_IP),
        **headers,
    }


def request_context(
    request_id: str, method: str, path: str, resource: str, user_agent: str, ip: str
) -> dict[str, Any]:
    return {
        "accountId": world.ACCOUNT_ID,
        "apiId": world.API_ID,
        "domainName": API_DOMAIN,
        "domainPrefix": world.API_ID,
        "httpMethod": method,
        "identity": {"sourceIp": ip, "userAgent": user_agent},
        "path": path,
        "protocol": "HTTP/1.1",
        "requestId": request_id,
        "requestTime": REQUEST_TIME[0],
        "requestTimeEpoch": REQUEST_TIME[1],
        "resourcePath": resource,
        "stage": world.STAGE,
    }


def proxy_event(
    request_id: str,
    method: str,
    path: str,
    resource: str,
    headers: dict[str, str],
    *,
    query: dict[str, str] | None = None,
    path_parameters: dict[str, str] | None = None,
    body: str | None = None,
    base64_body: bool = False,
    authorizer: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An integration request (payload format 1.0)."""
    ip = headers["x-forwarded-for"]
    context = request_context(request_id, method, path, resource, headers["user-agent"], ip)
    if authorizer is not None:
        context["authorizer"] = authorizer
    if body is not None:
        headers = {**headers, "content-length": str(len(body.encode()))}
        if base64_body:
            body = base64.b64encode(body.encode()).decode()
    return {
        "version": "1.0",
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "queryStringParameters": query,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": context,
        "body": body,
        "isBase64Encoded": base64_body,
    }


def authorizer_event(
    request_id: str, method: str, path: str, resource: str, headers: dict[str, str]
) -> Event:
    """The REQUEST authorizer's input (payload format 1.0, no identity sources)."""
    arn = f"arn:aws:execute-api:{world.REGION}:{world.ACCOUNT_ID}:{world.API_ID}"
    context = request_context(request_id, method, path, resource, BROWSER, CLIENT_IP)
    return {
        "version": "1.0",
        "type": "REQUEST",
        "methodArn": f"{arn}/{world.STAGE}/{method}{path}",
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "queryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": context,
    }


# --- the events, by function --------------------------------------------------


def authorizer_events() -> dict[str, tuple[Event, Outcome]]:
    def request(name: str, path: str = "/users", resource: str = "/users", **headers: str) -> Event:
        return authorizer_event(f"authorizer-{name}", "GET", path, resource, browser(**headers))

    bearer = f"Bearer {access_token()}"
    expired = access_token(iat=ISSUED_AT, exp=ISSUED_AT + 3600)
    return {
        "allow_bearer": (request("allow_bearer", authorization=bearer), "Allow"),
        "allow_cookie": (
            request(
                "allow_cookie",
                f"/users/{BOB}",
                "/users/{user_id}",
                cookie=f"theme=dark; access_token={access_token()}",
            ),
            "Allow",
        ),
        "deny_no_token": (request("deny_no_token"), "Deny"),
        "deny_garbage_token": (
            request("deny_garbage_token", authorization="Bearer not-a-jwt"),
            "Deny",
        ),
        "deny_expired_token": (
            request("deny_expired_token", authorization=f"Bearer {expired}"),
            "Deny",
        ),
        # Signed by the pool, but an ID token (PyJWT already refuses its unexpected aud).
        "deny_id_token": (request("deny_id_token", authorization=f"Bearer {id_token()}"), "Deny"),
    }


def authorizer_context(member: str | None = None) -> dict[str, Any]:
    """What jwt_authorizer.py's Allow hands the integration for Alice's (or a member's) token."""
    claims = world.access_claims(ISSUED_AT, FOREVER, member)
    return {
        "principalId": claims["sub"],
        "integrationLatency": 42,
        "client_id": claims["client_id"],
        "groups": ",".join(claims.get("cognito:groups", [])),
        "scope": claims["scope"],
        "sub": claims["sub"],
        "username": claims["username"],
    }


def users_events() -> dict[str, tuple[Event, Outcome]]:
    def request(
        name: str,
        method: str,
        user_id: str | None = None,
        body: Any = None,
        member: str | None = None,
        authorized: bool = True,
        **kw: Any,
    ) -> Event:
        """Alice's request (admins), or with ``member`` that member's."""
        headers = browser(authorization=f"Bearer {access_token(member)}")
        if body is not None:
            headers["content-type"] = "application/json"
            body = json.dumps(body)
        path, resource, parameters = "/users", "/users", None
        if user_id is not None:
            path, resource = f"/users/{user_id}", "/users/{user_id}"
            parameters = {"user_id": user_id}
        return proxy_event(
            f"users-{name}",
            method,
            path,
            resource,
            headers,
            path_parameters=parameters,
            body=body,
            authorizer=authorizer_context(member) if authorized else None,
            **kw,
        )

    assert set(MEMBERS) == {BOB, CAROL}
    return {
        # Alice, in the admins group: any user.
        "list": (request("list", "GET", query={"limit": "10"}), 200),
        "create": (
            request("create", "POST", body={"email": "erin@example.com", "name": "Erin"}),
            201,
        ),
        "create_invalid_email": (
            request("create_invalid_email", "POST", body={"email": "erin", "name": "Erin"}),
            400,
        ),
        "get": (request("get", "GET", BOB), 200),
        "patch": (request("patch", "PATCH", BOB, body={"name": "Bob Builder"}), 200),
        "delete": (request("delete", "DELETE", DAVE), 204),
        "get_missing": (request("get_missing", "GET", MISSING_USER), 404),
        # Bob and Carol, in no group: their own user only.
        "member_list": (request("member_list", "GET", member=BOB), 200),
        "member_create": (
            request(
                "member_create",
                "POST",
                body={"email": "eve@example.com", "name": "Eve"},
                member=BOB,
            ),
            403,
        ),
        "member_get_own": (request("member_get_own", "GET", BOB, member=BOB), 200),
        "member_patch_own": (
            request("member_patch_own", "PATCH", BOB, body={"name": "Bob B."}, member=BOB),
            200,
        ),
        "member_delete_own": (request("member_delete_own", "DELETE", CAROL, member=CAROL), 204),
        "member_get_other": (request("member_get_other", "GET", DAVE, member=BOB), 403),
        "member_patch_other": (
            request("member_patch_other", "PATCH", CAROL, body={"name": "Mallory"}, member=BOB),
            403,
        ),
        "member_delete_other": (request("member_delete_other", "DELETE", BOB, member=CAROL), 403),
        # Without the authorizer's context (a route left without authorize = true): nothing.
        "unauthorized_no_context": (
            request("unauthorized_no_context", "DELETE", BOB, authorized=False),
            401,
        ),
    }


def auth_events() -> dict[str, tuple[Event, Outcome]]:
    def callback(name: str, query: dict[str, str], state_cookie: str | None = STATE) -> Event:
        # The browser follows the hosted UI's redirect: a top-level navigation, no Origin.
        headers = {
            "accept": "text/html,application/xhtml+xml",
            "user-agent": BROWSER,
            **forwarded(CLIENT_IP),
        }
        if state_cookie:
            headers["cookie"] = f"oauth_state={state_cookie}"
        resource = "/auth/callback"
        return proxy_event(f"auth-{name}", "GET", resource, resource, headers, query=query)

    return {
        "callback": (callback("callback", {"code": world.AUTH_CODE, "state": STATE}), 302),
        "callback_missing_code": (callback("callback_missing_code", {"state": STATE}), 400),
        "callback_state_mismatch": (
            callback("callback_state_mismatch", {"code": world.AUTH_CODE, "state": STATE}, "other"),
            400,
        ),
        # The token endpoint answers invalid_grant: a used, expired or foreign code.
        "callback_refused_code": (
            callback(
                "callback_refused_code",
                {"code": "c0de0000-0000-4000-8000-0000000000ff", "state": STATE},
            ),
            400,
        ),
        "callback_login_error": (
            callback(
                "callback_login_error",
                {"error": "access_denied", "error_description": "User cancelled", "state": STATE},
            ),
            400,
        ),
    }


def sms_events() -> dict[str, tuple[Event, Outcome]]:
    def webhook(name: str, body: str, signature: str | None) -> Event:
        from twilio.request_validator import RequestValidator

        params = {
            "AccountSid": "AC00000000000000000000000000000000",
            "ApiVersion": "2010-04-01",
            "Body": body,
            "From": world.SENDER,
            "FromCountry": "US",
            "MessageSid": "SM00000000000000000000000000000001",
            "NumMedia": "0",
            "NumSegments": "1",
            "SmsMessageSid": "SM00000000000000000000000000000001",
            "SmsSid": "SM00000000000000000000000000000001",
            "SmsStatus": "received",
            "To": "+15555550199",
            "ToCountry": "US",
        }
        headers = {
            "accept": "*/*",
            "content-type": "application/x-www-form-urlencoded",
            "user-agent": "TwilioProxy/1.1",
            **forwarded(TWILIO_IP),
        }
        if signature == "valid":
            validator = RequestValidator(world.TWILIO_AUTH_TOKEN)
            signature = validator.compute_signature(world.TWILIO_WEBHOOK_URL, params)
        if signature is not None:
            headers["x-twilio-signature"] = signature
        path = "/sms/webhook"
        return proxy_event(
            f"sms-{name}", "POST", path, path, headers, body=urlencode(params), base64_body=True
        )

    return {
        "reply": (webhook("reply", CAPITAL_QUESTION, "valid"), 200),
        # Signed with another auth token, as anybody but Twilio would.
        "bad_signature": (
            webhook("bad_signature", CAPITAL_QUESTION, "c2lnbmVkIGJ5IHNvbWVib2R5IGVsc2U="),
            403,
        ),
        "missing_signature": (webhook("missing_signature", CAPITAL_QUESTION, None), 403),
        "empty_body": (webhook("empty_body", "", "valid"), 400),
    }


def cors_events() -> dict[str, tuple[Event, Outcome]]:
    def preflight(name: str, origin: str | None) -> Event:
        headers = {
            "accept": "*/*",
            "access-control-request-headers": "authorization,content-type",
            "access-control-request-method": "PATCH",
            "user-agent": BROWSER,
            **forwarded(CLIENT_IP),
        }
        if origin:
            headers["origin"] = origin
        path = f"/users/{BOB}"
        parameters = {"proxy": path.lstrip("/")}
        return proxy_event(
            f"cors-{name}", "OPTIONS", path, "/{proxy+}", headers, path_parameters=parameters
        )

    return {
        "preflight_allowed": (preflight("preflight_allowed", world.ALLOWED_ORIGIN), 204),
        "preflight_foreign_origin": (
            preflight("preflight_foreign_origin", "https://evil.example"),
            403,
        ),
        "preflight_no_origin": (preflight("preflight_no_origin", None), 403),
    }


EVENTS = {
    "sms": sms_events,
    "auth": auth_events,
    "users": users_events,
    "authorizer": authorizer_events,
    "cors": cors_events,
}


def render(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True) + "\n"


def files() -> dict[Path, str]:
    """Every event and expect.json file, by path, with its content."""
    out: dict[Path, str] = {}
    for function, make in EVENTS.items():
        events = make()
        folder = world.HERE / function
        for name, (event, _) in events.items():
            out[folder / f"{name}.json"] = render(event)
        out[folder / "expect.json"] = render(
            {name: outcome for name, (_, outcome) in events.items()}
        )
    return out


def ensure_key() -> None:
    if world.KEY_FILE.exists():
        return
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    world.KEY_FILE.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def main(argv: list[str]) -> int:
    check = argv == ["--check"]
    if argv and not check:
        print(__doc__, file=sys.stderr)
        return 2
    if not check:
        ensure_key()
    wanted = files()
    stale = sorted(p for p in wanted if not p.exists() or p.read_text() != wanted[p])
    extra = sorted(
        path
        for function in EVENTS
        for path in (world.HERE / function).glob("*.json")
        if path not in wanted
    )
    if check:
        for path in stale:
            print(f"out of date: {path.relative_to(world.HERE)}", file=sys.stderr)
        for path in extra:
            print(f"not written by generate.py: {path.relative_to(world.HERE)}", file=sys.stderr)
        return 1 if stale or extra else 0
    for path in stale:
        path.parent.mkdir(exist_ok=True)
        path.write_text(wanted[path])
    for path in extra:
        print(
            f"left alone, not written by generate.py: {path.relative_to(world.HERE)}",
            file=sys.stderr,
        )
    print(f"{len(stale)} of {len(wanted)} files written", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
