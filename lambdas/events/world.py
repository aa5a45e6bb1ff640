"""The fake world the functions meet outside AWS, one for every use of it.

fakes.py serves it to the packaged functions (`cargo xtask invoke --all`),
generate.py bakes its constants into the sample events, and the pytest
suite (lambdas/tests/conftest.py) runs the handlers against it in-process:

* the deployment the events pretend to come through (terraform/envs/dev)
  and the people in it;
* Cognito: the user pool's tokens, signed with test-signing-key.pem, its
  JWKS (the key's public half) and the hosted UI's token endpoint;
* OpenAI's chat completions endpoint, answering a canned reply;
* HttpFake, the HTTP server on 127.0.0.1 that serves those endpoints;
* AWS: the tables and secrets the functions use, made through whichever
  boto3 client is given (moto's server for fakes.py, moto's in-process mock
  for the tests).

Change a constant only together with a run of generate.py: the events carry
them (JWT claims, the Twilio signature, ids, URLs). Every secret here is
fake and protects nothing.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import boto3
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from jwt.algorithms import RSAAlgorithm

if TYPE_CHECKING:
    from types_boto3_dynamodb.client import DynamoDBClient
    from types_boto3_secretsmanager.client import SecretsManagerClient

HERE = Path(__file__).resolve().parent
KEY_FILE = HERE / "test-signing-key.pem"

# --- the deployment the events pretend to come through (terraform/envs/dev) ----
# The local API of `cargo xtask serve`: these three equal LOCAL_REGION,
# LOCAL_ACCOUNT and LOCAL_API_ID of xtask/src/facts/mod.rs, so that the event serve
# builds for a case (requests.json) is the committed one.
REGION = "us-east-1"
ACCOUNT_ID = "000000000000"
API_ID = "local00api"
API_DOMAIN = f"{API_ID}.execute-api.{REGION}.amazonaws.com"
API_URL = f"https://{API_DOMAIN}"
STAGE = "$default"
NAME_PREFIX = "lambda-app-dev"
USERS_TABLE = f"{NAME_PREFIX}-users"
CONVERSATIONS_TABLE = f"{NAME_PREFIX}-conversations"
ALLOWED_ORIGIN = "http://localhost:3000"  # the web application (var.allowed_origins)
POST_LOGIN_REDIRECT_URL = f"{ALLOWED_ORIGIN}/"

# --- Cognito ------------------------------------------------------------------
USER_POOL_ID = f"{REGION}_LocalEvents"
ISSUER = f"https://cognito-idp.{REGION}.amazonaws.com/{USER_POOL_ID}"
JWKS_PATH = f"/{USER_POOL_ID}/.well-known/jwks.json"
CLIENT_ID = "1example23456789"
CLIENT_SECRET = "fake-cognito-client-secret"
KEY_ID = "events-test-key-1"
REDIRECT_URI = f"{API_URL}/auth/callback"
AUTH_CODE = "c0de0000-0000-4000-8000-000000000001"  # the one code the token endpoint accepts
TOKEN_LIFETIME_SECONDS = 3600

# --- Twilio and OpenAI ----------------------------------------------------------
TWILIO_WEBHOOK_URL = f"{API_URL}/sms/webhook"
TWILIO_AUTH_TOKEN = "fake-twilio-auth-token-0000000000"
OPENAI_API_KEY = "sk-fake-openai-key-for-events"
OPENAI_REPLY = "Paris. (A canned answer from the fake OpenAI in lambdas/events/fakes.py.)"

# --- people -----------------------------------------------------------------
# Alice signs in (auth) and carries the access token (authorizer, users); she
# is in the admins group. Bob and Carol are members of no group: their user_id
# is their sub, as auth records it at login.
ALICE = {"sub": "a11ce000-0000-4000-8000-000000000001", "username": "alice"}
ALICE_EMAIL = "alice@example.com"
SENDER = "+15555550100"  # the phone number texting the sms webhook
SEEDED_AT = "2025-01-01T00:00:00+00:00"
# Alice's get/patch and Bob's own address Bob, Alice's delete Dave, Carol's
# delete herself: the events work in any order.
SEEDED_USERS = [
    {"user_id": "b0b00000-0000-4000-8000-000000000002", "email": "bob@example.com", "name": "Bob"},
    {
        "user_id": "d0d00000-0000-4000-8000-000000000003",
        "email": "dave@example.com",
        "name": "Dave",
    },
    {
        "user_id": "ca401000-0000-4000-8000-000000000004",
        "email": "carol@example.com",
        "name": "Carol",
    },
]
BOB, DAVE, CAROL = (user["user_id"] for user in SEEDED_USERS)
MEMBERS = {BOB: "bob", CAROL: "carol"}  # sub -> username, in no group
MISSING_USER = "00000000-0000-4000-8000-000000000404"

log = logging.getLogger("world")


# --- Cognito's tokens -----------------------------------------------------------


@functools.cache
def signing_key() -> rsa.RSAPrivateKey:
    """The user pool's key: test-signing-key.pem, read once."""
    key = load_pem_private_key(KEY_FILE.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise TypeError(f"{KEY_FILE.name} holds no RSA key")
    return key


def jwks() -> dict[str, Any]:
    """The user pool's JWKS document: the public half of its key."""
    public = RSAAlgorithm.to_jwk(signing_key().public_key(), as_dict=True)
    return {"keys": [{**public, "kid": KEY_ID, "alg": "RS256", "use": "sig"}]}


def sign(claims: dict[str, Any], key: rsa.RSAPrivateKey | None = None, kid: str = KEY_ID) -> str:
    """A JWT of ``claims`` as the pool signs it, or signed with another ``key`` or ``kid``."""
    return jwt.encode(claims, key or signing_key(), algorithm="RS256", headers={"kid": kid})


def id_claims(issued_at: int, expires_at: int) -> dict[str, Any]:
    """Alice's ID token."""
    return {
        "sub": ALICE["sub"],
        "aud": CLIENT_ID,
        "email": ALICE_EMAIL,
        "email_verified": True,
        "cognito:username": ALICE["username"],
        "name": "Alice Example",
        "iss": ISSUER,
        "token_use": "id",
        "auth_time": issued_at,
        "iat": issued_at,
        "exp": expires_at,
    }


def access_claims(issued_at: int, expires_at: int, member: str | None = None) -> dict[str, Any]:
    """Alice's access token, or with ``member`` (a sub of MEMBERS) that member's."""
    # Cognito leaves cognito:groups out of the token of a user in no group.
    who: dict[str, Any] = {
        "sub": ALICE["sub"],
        "cognito:groups": ["admins"],
        "username": ALICE["username"],
    }
    if member is not None:
        who = {"sub": member, "username": MEMBERS[member]}
    return {
        "sub": who["sub"],
        **({"cognito:groups": who["cognito:groups"]} if "cognito:groups" in who else {}),
        "client_id": CLIENT_ID,
        "iss": ISSUER,
        "token_use": "access",
        "scope": "openid email",
        "username": who["username"],
        "auth_time": issued_at,
        "iat": issued_at,
        "exp": expires_at,
    }


# --- HTTP fakes -------------------------------------------------------------


@dataclass
class Request:
    """A request an HttpFake received."""

    method: str
    path: str  # with its query string
    headers: dict[str, str]
    body: bytes


Answer = tuple[int, Any]  # a status, and a dict or list (sent as JSON), str or bytes
Route = Callable[[Request], Answer]


class HttpFake:
    """An HTTP server on 127.0.0.1 (a free port) answering GET and POST from a route table.

    A request is answered by the route of ``"<METHOD> <path>"``, else of
    ``"<path>"`` (any method), the query string left out; by 404 when there
    is none, and by 500 when its route raises. Every request is recorded in
    ``requests``, and the routes may change while it serves.
    """

    def __init__(self, name: str, routes: dict[str, Route] | None = None) -> None:
        self.name = name
        self.routes: dict[str, Route] = dict(routes or {})
        self.requests: list[Request] = []
        # Set when the server stops: what a stalled route waits for at most.
        self.release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(
                    self.command, self.path, dict(self.headers), self.rfile.read(length)
                )
                fake.requests.append(request)
                status, payload = fake.respond(request)
                log.info("%s: %s %s -> %d", fake.name, self.command, self.path, status)
                if isinstance(payload, (dict, list)):
                    payload, content_type = json.dumps(payload), "application/json"
                else:
                    content_type = "text/plain"
                body = payload.encode() if isinstance(payload, str) else payload
                # The client may have given up (its timeout, in the tests).
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

            do_GET = do_POST = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass  # each request is logged once, by _serve

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()

    def respond(self, request: Request) -> Answer:
        path = request.path.split("?", 1)[0]
        route = self.routes.get(f"{request.method} {path}") or self.routes.get(path)
        if route is None:
            return 404, {"error": "no route"}
        try:
            return route(request)
        except Exception:
            log.exception("%s: %s %s failed", self.name, request.method, request.path)
            return 500, {"error": "fake failed"}

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}{path}"

    def stall(self, seconds: float = 5.0) -> Route:
        """A route that answers 200 only after ``seconds``, or when the server stops."""

        def route(request: Request) -> Answer:
            self.release.wait(seconds)
            return 200, {}

        return route

    def stop(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def token_endpoint(request: Request) -> Answer:
    """Cognito's /oauth2/token for the authorization-code grant, as a confidential client."""
    form = dict(parse_qsl(request.body.decode()))
    scheme, _, credentials = (request.headers.get("Authorization") or "").partition(" ")
    try:
        basic = base64.b64decode(credentials, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        basic = ""
    if scheme != "Basic" or not hmac.compare_digest(basic, f"{CLIENT_ID}:{CLIENT_SECRET}"):
        return 400, {"error": "invalid_client"}
    if form.get("grant_type") != "authorization_code" or form.get("client_id") != CLIENT_ID:
        return 400, {"error": "unsupported_grant_type"}
    if form.get("code") != AUTH_CODE or form.get("redirect_uri") != REDIRECT_URI:
        return 400, {"error": "invalid_grant"}
    now = int(time.time())
    return 200, {
        "id_token": sign(id_claims(now, now + TOKEN_LIFETIME_SECONDS)),
        "access_token": sign(access_claims(now, now + TOKEN_LIFETIME_SECONDS)),
        "refresh_token": "fake-opaque-refresh-token",
        "expires_in": TOKEN_LIFETIME_SECONDS,
        "token_type": "Bearer",
    }


def chat_completions(request: Request) -> Answer:
    """OpenAI's /v1/chat/completions for the events' key, answering OPENAI_REPLY."""
    if request.headers.get("Authorization") != f"Bearer {OPENAI_API_KEY}":
        return 401, {
            "error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}
        }
    completion = json.loads(request.body)
    if not (isinstance(completion.get("messages"), list) and completion.get("model")):
        return 400, {"error": {"message": "model and messages are required"}}
    return 200, {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": completion["model"],
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": OPENAI_REPLY},
                "finish_reason": "stop",
            }
        ],
    }


# --- AWS (moto) -------------------------------------------------------------


def create_table(dynamodb: DynamoDBClient, name: str, key: str) -> None:
    """A table with a string partition key ``key``, billed per request."""
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def create_secret(secretsmanager: SecretsManagerClient, name: str, value: str) -> str:
    """A secret whose SecretString is ``value``; its ARN."""
    return secretsmanager.create_secret(Name=name, SecretString=value)["ARN"]


def seed_aws(endpoint: str) -> dict[str, str]:
    """The events' tables, items and secrets at ``endpoint``; the secrets' ARNs by name."""
    session = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )
    dynamodb = session.client("dynamodb", endpoint_url=endpoint)
    create_table(dynamodb, USERS_TABLE, "user_id")
    create_table(dynamodb, CONVERSATIONS_TABLE, "phone_number")
    for user in SEEDED_USERS:
        item = {**user, "created_at": SEEDED_AT, "updated_at": SEEDED_AT}
        dynamodb.put_item(TableName=USERS_TABLE, Item={k: {"S": v} for k, v in item.items()})
    # An earlier exchange, so the sms events also read a conversation.
    history = [("user", "Hello!"), ("assistant", "Hi! How can I help?")]
    dynamodb.put_item(
        TableName=CONVERSATIONS_TABLE,
        Item={
            "phone_number": {"S": SENDER},
            "messages": {
                "L": [
                    {"M": {"role": {"S": role}, "content": {"S": text}}} for role, text in history
                ]
            },
            "updated_at": {"S": SEEDED_AT},
            "expires_at": {"N": str(int(time.time()) + 30 * 24 * 3600)},
        },
    )
    secretsmanager = session.client("secretsmanager", endpoint_url=endpoint)
    secrets = {
        "twilio-auth-token": TWILIO_AUTH_TOKEN,
        "openai-api-key": OPENAI_API_KEY,
        "cognito-client-secret": CLIENT_SECRET,
    }
    return {
        name: create_secret(secretsmanager, f"{NAME_PREFIX}/{name}", value)
        for name, value in secrets.items()
    }
