"""Writes the sample cases of lambdas/events: each one's HTTP form, its event, its outcome.

    python lambdas/events/generate.py           # (re)write them
    python lambdas/events/generate.py --check   # exit 1 when a file is not what it would write

A case starts as what a client sends the API: its HTTP form (method, target,
headers in order with lower-case names, body) and the status the API answers,
written to <function>/requests.json (send.py sends them). Its event,
<function>/<name>.json, is derived from that form by ONE function,
``integration_event`` (``authorizer_event`` for the REQUEST authorizer), as
the HTTP API of terraform/envs/dev builds it, and `cargo xtask serve` too:
payload format 1.0, whole (multiValueHeaders, multiValueQueryStringParameters,
identity's null fields), bodies base64-encoded unless their type is text or
JSON, and the x-forwarded-* headers of the connection appended after the
client's: the client at CLIENT_IP (Twilio at TWILIO_IP) reaching the API over
HTTPS on port 443. Through serve, only what describes the connection and the
moment differs: request ids, times, identity.sourceIp, x-forwarded-*,
integrationLatency.

The files are static: they were written once by this script and only change
when it or the constants in world.py change. The output is deterministic
(RS256 signatures and Twilio's HMAC are), so a run over an unchanged tree
rewrites every file byte for byte. test-signing-key.pem is created only when
it is missing; a new key changes every token below.
"""

from __future__ import annotations

import base64
import json
import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode

import world
from world import API_DOMAIN, BOB, CAROL, DAVE, MEMBERS, MISSING_USER

ISSUED_AT = 1735689600  # 2025-01-01T00:00:00Z
FOREVER = 4102444800  # 2100-01-01T00:00:00Z
REQUEST_TIME = ("01/Jan/2025:12:00:00 +0000", 1735732800000)
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
CLIENT_IP = "203.0.113.10"
TWILIO_IP = "198.51.100.20"
# The deployed API's side of the connection: HTTPS on 443.
FORWARDED_PORT = "443"
FORWARDED_PROTO = "https"
# How long the authorizer took, in the integration's requestContext.authorizer.
INTEGRATION_LATENCY_MS = 42
STATE = "5f3c1a9e2b7d4c6f8a0e1d3b5c7a9f2e"
CAPITAL_QUESTION = "What is the capital of France?"


def api_routes(cargo_toml: Path) -> tuple[str, dict[str, tuple[str, bool]]]:
    """The API of Cargo.toml, where the routes are written once (serve answers
    them, Terraform deploys them from dist/manifest.json): the authorizer
    function, and route key -> (function, behind the authorizer)."""
    with cargo_toml.open("rb") as file:
        lambda_table = tomllib.load(file)["workspace"]["metadata"]["lambda"]
    routes: dict[str, tuple[str, bool]] = {}
    for name, function in lambda_table["functions"].items():
        default = bool(function.get("authorize", False))
        for route in function.get("routes", []):
            if isinstance(route, str):
                routes[route] = (name, default)
            else:
                routes[route["key"]] = (name, bool(route.get("authorize", default)))
    return str(lambda_table["api"]["authorizer"]["function"]), routes


AUTHORIZER, ROUTES = api_routes(world.HERE.parent.parent / "Cargo.toml")

# The content types API Gateway passes as text; every other body is base64.
TEXT_TYPES = re.compile(r"text/.*|application/(json|[^/]*\+json|xml|[^/]*\+xml|javascript)")

Event = dict[str, Any]
# A status code, or the authorizer's policy effect ("Allow" or "Deny").
Outcome = int | str


@dataclass(frozen=True)
class Form:
    """A request as a client sends it: what requests.json holds of a case."""

    method: str
    target: str  # the path and query string, as sent
    headers: tuple[tuple[str, str], ...]  # in order, names in lower case, host included
    body: str | None = None

    def to_json(self, status: int) -> dict[str, Any]:
        return {
            "method": self.method,
            "target": self.target,
            "headers": [list(header) for header in self.headers],
            "body": self.body,
            "status": status,
        }


@dataclass(frozen=True)
class Allowed:
    """What jwt_authorizer.py's Allow answers: the principal and the context it hands on."""

    principal_id: str
    context: dict[str, Any]


@dataclass(frozen=True)
class Case:
    form: Form
    outcome: Outcome  # expect.json's: what the function answers the event
    # What the API answers the form; None: no client can send this case
    # (the deployed API never sends its event), so requests.json leaves it out.
    status: int | None
    peer: str = CLIENT_IP
    # The authorizer's answer to the form, for an integration behind it.
    allowed: Allowed | None = None


def form(method: str, target: str, *headers: tuple[str, str], body: str | None = None) -> Form:
    """The client's request to the API's host; a body gets its content-length."""
    length = () if body is None else (("content-length", str(len(body.encode()))),)
    return Form(method, target, (("host", API_DOMAIN), *headers, *length), body)


# --- from the HTTP form to the event (what API Gateway and serve do) ------------


def select_route(method: str, path: str) -> tuple[str, dict[str, str]]:
    """The route API Gateway picks for the request, and its path parameters.

    Among the routes of the method (or ANY) whose segments match: the most
    literal segments first, left to right (a literal beats a {param}, which
    beats a greedy {proxy+}); the exact method before ANY.
    """
    matches = []
    for key in ROUTES:
        route_method, route_path = key.split(" ", 1)
        parameters = match_path(route_path, path)
        if route_method in (method, "ANY") and parameters is not None:
            segments = route_path.split("/")[1:]
            rank = [2 if s.endswith("+}") else 1 if s.startswith("{") else 0 for s in segments]
            matches.append(((rank, route_method == "ANY"), key, parameters))
    if not matches:
        raise ValueError(f"no route of ROUTES takes {method} {path}")
    _, key, parameters = min(matches, key=lambda found: found[0])
    return key, parameters


def match_path(route_path: str, path: str) -> dict[str, str] | None:
    """The path parameters (percent-decoded) when ``path`` matches the route's, else None."""
    route_segments, segments = route_path.split("/")[1:], path.split("/")[1:]
    parameters: dict[str, str] = {}
    for index, segment in enumerate(route_segments):
        if segment.startswith("{") and segment.endswith("+}"):
            rest = "/".join(segments[index:])
            if not rest:
                return None
            parameters[segment[1:-2]] = unquote(rest)
            return parameters
        if index >= len(segments):
            return None
        if segment.startswith("{"):
            if not segments[index]:
                return None
            parameters[segment[1:-1]] = unquote(segments[index])
        elif segment != segments[index]:
            return None
    return parameters if len(segments) == len(route_segments) else None


def request_event(form: Form, peer: str, request_id: str) -> tuple[Event, str]:
    """What the integration's and the authorizer's events share, and the route taken."""
    path, _, query = form.target.partition("?")
    route, path_parameters = select_route(form.method, path)
    resource = route.split(" ", 1)[1]
    received = [(name.lower(), value) for name, value in form.headers]
    received += [
        ("x-forwarded-for", peer),
        ("x-forwarded-port", FORWARDED_PORT),
        ("x-forwarded-proto", FORWARDED_PROTO),
    ]
    headers = dict(received)  # the last value of a name
    multi_headers: dict[str, list[str]] = {}
    for name, value in received:
        multi_headers.setdefault(name, []).append(value)
    parameters = parse_qsl(query, keep_blank_values=True)
    multi_query: dict[str, list[str]] = {}
    for name, value in parameters:
        multi_query.setdefault(name, []).append(value)
    domain = re.sub(r":\d+$", "", headers["host"])
    identity = {
        "accessKey": None,
        "accountId": None,
        "caller": None,
        "cognitoAuthenticationProvider": None,
        "cognitoAuthenticationType": None,
        "cognitoIdentityId": None,
        "cognitoIdentityPoolId": None,
        "principalOrgId": None,
        "sourceIp": peer,
        "user": None,
        "userAgent": headers.get("user-agent", ""),
        "userArn": None,
    }
    event = {
        "version": "1.0",
        "resource": resource,
        "path": path,
        "httpMethod": form.method,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": dict(parameters) or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "requestContext": {
            "accountId": world.ACCOUNT_ID,
            "apiId": world.API_ID,
            "domainName": domain,
            "domainPrefix": domain.split(".", 1)[0],
            "extendedRequestId": request_id,
            "httpMethod": form.method,
            "identity": identity,
            "path": path,
            "protocol": "HTTP/1.1",
            "requestId": request_id,
            "requestTime": REQUEST_TIME[0],
            "requestTimeEpoch": REQUEST_TIME[1],
            "resourceId": None,
            "resourcePath": resource,
            "stage": world.STAGE,
        },
    }
    return event, route


def integration_event(
    form: Form, peer: str, request_id: str, allowed: Allowed | None
) -> tuple[Event, str]:
    """The integration's event (payload format 1.0) for the form, and the route taken."""
    event, route = request_event(form, peer, request_id)
    if allowed is not None:
        event["requestContext"]["authorizer"] = {
            **allowed.context,
            "principalId": allowed.principal_id,
            "integrationLatency": INTEGRATION_LATENCY_MS,
        }
    body, encoded = form.body or None, False
    if body is not None:
        content_type = event["headers"].get("content-type", "").split(";")[0].strip().lower()
        if not TEXT_TYPES.fullmatch(content_type):
            body, encoded = base64.b64encode(body.encode()).decode(), True
    return {**event, "body": body, "isBase64Encoded": encoded}, route


def authorizer_event(form: Form, peer: str, request_id: str) -> tuple[Event, str]:
    """The REQUEST authorizer's event (payload format 1.0) for the form, and the route taken."""
    event, route = request_event(form, peer, request_id)
    arn = f"arn:aws:execute-api:{world.REGION}:{world.ACCOUNT_ID}:{world.API_ID}"
    method_arn = f"{arn}/{world.STAGE}/{form.method}{event['path']}"
    return {**event, "type": "REQUEST", "methodArn": method_arn}, route


def event_of(function: str, name: str, case: Case) -> Event:
    """The case's event, checked against the route its form takes."""
    request_id = f"{function}-{name}"
    if function == AUTHORIZER:
        event, route = authorizer_event(case.form, case.peer, request_id)
        authorized = ROUTES[route][1]
    else:
        event, route = integration_event(case.form, case.peer, request_id, case.allowed)
        route_function, authorized = ROUTES[route]
        if route_function != function:
            raise ValueError(f"{function}/{name}: {route} goes to {route_function}")
        # The one case the deployed API never sends may lack the context.
        if case.status is not None and authorized != (case.allowed is not None):
            raise ValueError(f"{function}/{name}: {route} is authorized: {authorized}")
    if function == AUTHORIZER and not authorized:
        raise ValueError(f"{function}/{name}: {route} is not behind the authorizer")
    return event


# --- the people's tokens and the authorizer's answers -----------------------------


def access_token(member: str | None = None, **overrides: Any) -> str:
    return world.sign({**world.access_claims(ISSUED_AT, FOREVER, member), **overrides})


def id_token() -> str:
    return world.sign(world.id_claims(ISSUED_AT, FOREVER))


def allowed(member: str | None = None) -> Allowed:
    """What jwt_authorizer.py's Allow answers for Alice's (or a member's) access token."""
    claims = world.access_claims(ISSUED_AT, FOREVER, member)
    return Allowed(
        principal_id=claims["sub"],
        context={
            "client_id": claims["client_id"],
            "groups": ",".join(claims.get("cognito:groups", [])),
            "scope": claims["scope"],
            "sub": claims["sub"],
            "username": claims["username"],
        },
    )


def browser(method: str, target: str, *headers: tuple[str, str], body: str | None = None) -> Form:
    """A fetch() of the web application, with its credentials."""
    return form(
        method,
        target,
        ("user-agent", BROWSER),
        ("accept", "application/json"),
        ("origin", world.ALLOWED_ORIGIN),
        *headers,
        body=body,
    )


# --- the cases, by function ------------------------------------------------------


def authorizer_cases() -> dict[str, Case]:
    """Requests to the /users routes: the API answers 200 when allowed, 403 when denied."""

    def request(*headers: tuple[str, str], target: str = "/users", allow: bool = False) -> Case:
        outcome, status = ("Allow", 200) if allow else ("Deny", 403)
        return Case(browser("GET", target, *headers), outcome, status)

    bearer = f"Bearer {access_token()}"
    expired = access_token(iat=ISSUED_AT, exp=ISSUED_AT + 3600)
    return {
        "allow_bearer": request(("authorization", bearer), allow=True),
        "allow_cookie": request(
            ("cookie", f"theme=dark; access_token={access_token()}"),
            target=f"/users/{BOB}",
            allow=True,
        ),
        "deny_no_token": request(),
        "deny_garbage_token": request(("authorization", "Bearer not-a-jwt")),
        "deny_expired_token": request(("authorization", f"Bearer {expired}")),
        # Signed by the pool, but an ID token (PyJWT already refuses its unexpected aud).
        "deny_id_token": request(("authorization", f"Bearer {id_token()}")),
    }


def users_cases() -> dict[str, Case]:
    def request(
        method: str,
        status: int,
        user_id: str | None = None,
        body: Any = None,
        member: str | None = None,
        query: str = "",
        authorized: bool = True,
    ) -> Case:
        """Alice's request (admins), or with ``member`` that member's, with their token."""
        headers = [("authorization", f"Bearer {access_token(member)}")]
        if body is not None:
            headers.append(("content-type", "application/json"))
            body = json.dumps(body)
        target = "/users" if user_id is None else f"/users/{user_id}"
        return Case(
            browser(method, target + query, *headers, body=body),
            status,
            status if authorized else None,
            allowed=allowed(member) if authorized else None,
        )

    assert set(MEMBERS) == {BOB, CAROL}
    return {
        # Alice, in the admins group: any user.
        "list": request("GET", 200, query="?limit=10"),
        "create": request("POST", 201, body={"email": "erin@example.com", "name": "Erin"}),
        "create_invalid_email": request("POST", 400, body={"email": "erin", "name": "Erin"}),
        "get": request("GET", 200, BOB),
        "patch": request("PATCH", 200, BOB, body={"name": "Bob Builder"}),
        "delete": request("DELETE", 204, DAVE),
        "get_missing": request("GET", 404, MISSING_USER),
        # Bob and Carol, in no group: their own user only.
        "member_list": request("GET", 200, member=BOB),
        "member_create": request(
            "POST", 403, body={"email": "eve@example.com", "name": "Eve"}, member=BOB
        ),
        "member_get_own": request("GET", 200, BOB, member=BOB),
        "member_patch_own": request("PATCH", 200, BOB, body={"name": "Bob B."}, member=BOB),
        "member_delete_own": request("DELETE", 204, CAROL, member=CAROL),
        "member_get_other": request("GET", 403, DAVE, member=BOB),
        "member_patch_other": request("PATCH", 403, CAROL, body={"name": "Mallory"}, member=BOB),
        "member_delete_other": request("DELETE", 403, BOB, member=CAROL),
        # Without the authorizer's context (a route left without authorize = true):
        # nothing. The deployed API never sends it, so it has no HTTP form.
        "unauthorized_no_context": request("DELETE", 401, BOB, authorized=False),
    }


def auth_cases() -> dict[str, Case]:
    def callback(status: int, query: dict[str, str], state_cookie: str = STATE) -> Case:
        # The browser follows the hosted UI's redirect: a top-level navigation, no Origin.
        navigation = form(
            "GET",
            f"/auth/callback?{urlencode(query)}",
            ("user-agent", BROWSER),
            ("accept", "text/html,application/xhtml+xml"),
            ("cookie", f"oauth_state={state_cookie}"),
        )
        return Case(navigation, status, status)

    return {
        "callback": callback(302, {"code": world.AUTH_CODE, "state": STATE}),
        "callback_missing_code": callback(400, {"state": STATE}),
        "callback_state_mismatch": callback(
            400, {"code": world.AUTH_CODE, "state": STATE}, "other"
        ),
        # The token endpoint answers invalid_grant: a used, expired or foreign code.
        "callback_refused_code": callback(
            400, {"code": "c0de0000-0000-4000-8000-0000000000ff", "state": STATE}
        ),
        "callback_login_error": callback(
            400, {"error": "access_denied", "error_description": "User cancelled", "state": STATE}
        ),
    }


def sms_cases() -> dict[str, Case]:
    def webhook(status: int, body: str, signature: str | None) -> Case:
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
        if signature == "valid":
            validator = RequestValidator(world.TWILIO_AUTH_TOKEN)
            signature = validator.compute_signature(world.TWILIO_WEBHOOK_URL, params)
        signed = () if signature is None else (("x-twilio-signature", signature),)
        post = form(
            "POST",
            "/sms/webhook",
            ("user-agent", "TwilioProxy/1.1"),
            ("accept", "*/*"),
            ("content-type", "application/x-www-form-urlencoded"),
            *signed,
            body=urlencode(params),
        )
        return Case(post, status, status, peer=TWILIO_IP)

    return {
        "reply": webhook(200, CAPITAL_QUESTION, "valid"),
        # Signed with another auth token, as anybody but Twilio would.
        "bad_signature": webhook(403, CAPITAL_QUESTION, "c2lnbmVkIGJ5IHNvbWVib2R5IGVsc2U="),
        "missing_signature": webhook(403, CAPITAL_QUESTION, None),
        "empty_body": webhook(400, "", "valid"),
    }


def cors_cases() -> dict[str, Case]:
    def preflight(status: int, origin: str | None) -> Case:
        # The browser's preflight of a PATCH /users/{user_id} with a JSON body and a token.
        origins = () if origin is None else (("origin", origin),)
        options = form(
            "OPTIONS",
            f"/users/{BOB}",
            ("user-agent", BROWSER),
            ("accept", "*/*"),
            ("access-control-request-method", "PATCH"),
            ("access-control-request-headers", "authorization,content-type"),
            *origins,
        )
        return Case(options, status, status)

    return {
        "preflight_allowed": preflight(204, world.ALLOWED_ORIGIN),
        "preflight_foreign_origin": preflight(403, "https://evil.example"),
        "preflight_no_origin": preflight(403, None),
    }


CASES = {
    "sms": sms_cases,
    "auth": auth_cases,
    "users": users_cases,
    "authorizer": authorizer_cases,
    "cors": cors_cases,
}


def render(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True) + "\n"


def render_requests(forms: dict[str, dict[str, Any]]) -> str:
    """requests.json: the cases by name, each in the order a request reads, one header a line."""
    text = json.dumps(dict(sorted(forms.items())), indent=2)
    string = r'"(?:[^"\\]|\\.)*"'
    return re.sub(rf"\[\n\s+({string}),\n\s+({string})\n\s+\]", r"[\1, \2]", text) + "\n"


def files() -> dict[Path, str]:
    """Every event, expect.json and requests.json file, by path, with its content."""
    out: dict[Path, str] = {}
    for function, make in CASES.items():
        cases = make()
        folder = world.HERE / function
        for name, case in cases.items():
            out[folder / f"{name}.json"] = render(event_of(function, name, case))
        out[folder / "expect.json"] = render({name: case.outcome for name, case in cases.items()})
        out[folder / "requests.json"] = render_requests(
            {
                name: case.form.to_json(case.status)
                for name, case in cases.items()
                if case.status is not None
            }
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
        for function in CASES
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
