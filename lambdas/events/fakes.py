"""The local world the sample events in lambdas/events run against.

    python lambdas/events/fakes.py      # a Python with lambdas/requirements-dev.txt

starts, on 127.0.0.1 only and on free ports,

* moto in server mode (DynamoDB and Secrets Manager), with the tables and
  secrets the functions use and the items the events address;
* Cognito: the user pool's JWKS (the public half of test-signing-key.pem)
  and the hosted UI's token endpoint, which issues tokens signed with it;
* OpenAI's chat completions endpoint, answering a canned reply;

then prints ONE line of JSON on stdout, ``{"env": {<function>: {<name>: <value>}}}``,
the environment each function needs to use these fakes (no AWS credentials
or region: the caller sets fake ones and us-east-1), and serves until stdin
reaches EOF. Logs go to stderr.

The constants below are also what generate.py bakes into the events (JWT
claims, the Twilio signature, ids, URLs): change them only together with a
run of generate.py. Every secret here is fake and protects nothing.

The world is set up once per run: an event that consumes something (the
delete of the seeded user) succeeds once per run of this script.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import hmac
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

HERE = Path(__file__).resolve().parent
KEY_FILE = HERE / "test-signing-key.pem"
FUNCTIONS = ("sms", "auth", "users", "authorizer", "cors")

# --- the deployment the events pretend to come through (terraform/envs/dev) ----
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
API_ID = "abc123defg"
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

log = logging.getLogger("fakes")


@functools.cache
def signing_key() -> Any:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    return load_pem_private_key(KEY_FILE.read_bytes(), password=None)


def jwks() -> dict[str, Any]:
    from jwt.algorithms import RSAAlgorithm

    public = RSAAlgorithm.to_jwk(signing_key().public_key(), as_dict=True)
    return {"keys": [{**public, "kid": KEY_ID, "alg": "RS256", "use": "sig"}]}


def sign(claims: dict[str, Any]) -> str:
    import jwt

    return jwt.encode(claims, signing_key(), algorithm="RS256", headers={"kid": KEY_ID})


def id_claims(issued_at: int, expires_at: int) -> dict[str, Any]:
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
    who = {"sub": ALICE["sub"], "cognito:groups": ["admins"], "username": ALICE["username"]}
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

Route = Callable[[dict[str, str], bytes], tuple[int, Any]]  # headers, body -> status, JSON


class FakeServer:
    """An HTTP server on 127.0.0.1 (free port) answering JSON from a (method, path) table."""

    def __init__(self, name: str, routes: dict[tuple[str, str], Route]) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                route = routes.get((self.command, self.path.split("?", 1)[0]))
                try:
                    status, payload = route(dict(self.headers), body) if route else (404, {})
                except Exception:
                    log.exception("%s: %s %s failed", name, self.command, self.path)
                    status, payload = 500, {"error": "fake failed"}
                log.info("%s: %s %s -> %d", name, self.command, self.path, status)
                data = json.dumps(payload).encode()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)

            do_GET = do_POST = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(
            target=fake.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}{path}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def token_endpoint(headers: dict[str, str], body: bytes) -> tuple[int, Any]:
    """Cognito's /oauth2/token for the authorization-code grant, as a confidential client."""
    form = dict(parse_qsl(body.decode()))
    scheme, _, credentials = (headers.get("Authorization") or "").partition(" ")
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


def chat_completions(headers: dict[str, str], body: bytes) -> tuple[int, Any]:
    if headers.get("Authorization") != f"Bearer {OPENAI_API_KEY}":
        return 401, {
            "error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}
        }
    request = json.loads(body)
    if not (isinstance(request.get("messages"), list) and request.get("model")):
        return 400, {"error": {"message": "model and messages are required"}}
    return 200, {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request["model"],
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": OPENAI_REPLY},
                "finish_reason": "stop",
            }
        ],
    }


# --- AWS (moto) -------------------------------------------------------------


def seed_aws(endpoint: str) -> dict[str, str]:
    """Tables, items and secrets; returns the secrets' ARNs by name."""
    import boto3

    session = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )
    dynamodb = session.client("dynamodb", endpoint_url=endpoint)
    for table, key in ((USERS_TABLE, "user_id"), (CONVERSATIONS_TABLE, "phone_number")):
        dynamodb.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
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
        name: secretsmanager.create_secret(Name=f"{NAME_PREFIX}/{name}", SecretString=value)["ARN"]
        for name, value in secrets.items()
    }


def environment(
    aws: str, arns: dict[str, str], idp: str, hosted_ui: str, openai: str
) -> dict[str, dict[str, str]]:
    common = {
        "ALLOWED_ORIGINS": ALLOWED_ORIGIN,
        "LOG_LEVEL": "INFO",
        "AWS_ENDPOINT_URL": aws,
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    cognito = {
        "COGNITO_USER_POOL_ID": USER_POOL_ID,
        "COGNITO_CLIENT_ID": CLIENT_ID,
        # The issuer stays Cognito's (it is in the tokens); only the keys are fetched locally.
        "JWKS_URL": f"{idp}/{USER_POOL_ID}/.well-known/jwks.json",
    }
    env = {
        "sms": {
            "CONVERSATIONS_TABLE": CONVERSATIONS_TABLE,
            "TWILIO_WEBHOOK_URL": TWILIO_WEBHOOK_URL,
            "TWILIO_AUTH_TOKEN_SECRET_ARN": arns["twilio-auth-token"],
            "OPENAI_API_KEY_SECRET_ARN": arns["openai-api-key"],
            "OPENAI_API_URL": f"{openai}/v1/chat/completions",
        },
        "auth": {
            **cognito,
            "COGNITO_CLIENT_SECRET_ARN": arns["cognito-client-secret"],
            "COGNITO_DOMAIN": hosted_ui,
            "COGNITO_REDIRECT_URI": REDIRECT_URI,
            "POST_LOGIN_REDIRECT_URL": POST_LOGIN_REDIRECT_URL,
            "USERS_TABLE": USERS_TABLE,
        },
        "users": {"USERS_TABLE": USERS_TABLE},
        "authorizer": cognito,
        "cors": {},
    }
    return {name: dict(sorted({**common, **env[name]}.items())) for name in FUNCTIONS}


def isolate_from_host() -> None:
    """Keep this process's own boto3 and HTTP off the developer's AWS config and proxies."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL"):
        os.environ.pop(name, None)
    os.environ["AWS_CONFIG_FILE"] = os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"


def main() -> int:
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="fakes %(levelname)s %(message)s"
    )
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request log
    # Only the env line may reach stdout: anything a library prints goes to stderr.
    stdout, sys.stdout = sys.stdout, sys.stderr
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    isolate_from_host()
    started = time.monotonic()

    try:
        from moto.server import ThreadedMotoServer
    except ImportError as error:
        log.error("%s: install lambdas/requirements-dev.txt (moto's server needs flask)", error)
        return 1

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    fakes: list[FakeServer] = []
    try:
        host, port = moto.get_host_and_port()
        aws = f"http://{host}:{port}"
        arns = seed_aws(aws)
        keys = jwks()
        idp = FakeServer(
            "cognito-idp",
            {("GET", f"/{USER_POOL_ID}/.well-known/jwks.json"): lambda headers, body: (200, keys)},
        )
        hosted_ui = FakeServer("cognito-hosted-ui", {("POST", "/oauth2/token"): token_endpoint})
        openai = FakeServer("openai", {("POST", "/v1/chat/completions"): chat_completions})
        fakes = [idp, hosted_ui, openai]
        env = environment(aws, arns, idp.url(), hosted_ui.url(), openai.url())
        stdout.write(json.dumps({"env": env}) + "\n")
        stdout.flush()
        log.info(
            "ready in %.2f s: moto %s, JWKS %s, token endpoint %s, OpenAI %s; close stdin to stop",
            time.monotonic() - started,
            aws,
            idp.url(),
            hosted_ui.url(),
            openai.url(),
        )
        while sys.stdin.buffer.read(65536):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        for fake in fakes:
            fake.stop()
        moto.stop()
        log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
