"""Fixtures shared by the suite, and the import layout Lambda would use.

Lambda puts the function's folder at /var/task and the ``shared`` layer at
/opt/python/shared: here ``lambdas/`` (for ``shared``) and each function
folder go on sys.path the same way, so the handlers import exactly as they
do in production (``import users_handler``, ``from shared import …``).

Everything outside the process is faked on 127.0.0.1 or in memory: AWS
through moto, Cognito's JWKS and token endpoints and OpenAI through small
``http.server`` servers started per test.
"""

from __future__ import annotations

import json
import logging
import socket
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from moto import mock_aws

ROOT = Path(__file__).resolve().parents[2]
LAMBDAS = ROOT / "lambdas"
BUILD_CONFIG = tomllib.loads((ROOT / "Cargo.toml").read_text())
FUNCTIONS = BUILD_CONFIG["workspace"]["metadata"]["lambda"]["functions"]

# Keep the function folders free of __pycache__: they are what gets zipped.
sys.dont_write_bytecode = True
for entry in [LAMBDAS, *(ROOT / function["source"] for function in FUNCTIONS.values())]:
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

from shared import db_utils, secrets_cache  # noqa: E402  (needs the path above)

_connect = socket.socket.connect


def _loopback_only(sock: socket.socket, address: Any) -> None:
    """Fail whatever opens a connection anywhere but 127.0.0.1, imports included."""
    if sock.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in ("127.0.0.1", "::1"):
        raise RuntimeError(f"the tests must not reach {address}")
    return _connect(sock, address)


socket.socket.connect = _loopback_only  # type: ignore[method-assign,assignment]

REGION = "us-east-1"
ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_TestPool"
CLIENT_ID = "test-app-client"
KEY_ID = "test-key-1"

# Every variable a handler reads: a developer's own settings must not leak in.
HANDLER_ENV_VARS = (
    "ALLOWED_ORIGINS",
    "USERS_TABLE",
    "CONVERSATIONS_TABLE",
    "COGNITO_ISSUER",
    "COGNITO_USER_POOL_ID",
    "COGNITO_CLIENT_ID",
    "COGNITO_CLIENT_SECRET_ARN",
    "COGNITO_DOMAIN",
    "COGNITO_REDIRECT_URI",
    "POST_LOGIN_REDIRECT_URL",
    "JWKS_URL",
    "HTTP_TIMEOUT_SECONDS",
    "TWILIO_WEBHOOK_URL",
    "TWILIO_AUTH_TOKEN_SECRET_ARN",
    "OPENAI_API_KEY_SECRET_ARN",
    "OPENAI_API_URL",
    "OPENAI_MODEL",
    "LOG_LEVEL",
)
PROXY_ENV_VARS = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Fake AWS credentials, no handler settings or proxies, no cached secrets, logging restored."""
    for name in (*HANDLER_ENV_VARS, *PROXY_ENV_VARS, "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    # The handlers' cached boto3 clients are kept: moto intercepts them whichever
    # test created them, and each would cost ~0.1 s to build again.
    secrets_cache.clear_cache()
    root = logging.getLogger()
    root_level = root.level
    yield
    root.setLevel(root_level)
    secrets_cache.clear_cache()


@pytest.fixture
def lambda_context() -> SimpleNamespace:
    return SimpleNamespace(aws_request_id="req-0001", function_name="test")


# --- AWS (moto) -------------------------------------------------------------


@pytest.fixture(scope="session")
def aws_session() -> boto3.Session:
    """One boto3 session for the tests' own clients.

    moto drops boto3's default session on every start, and a new session
    re-reads botocore's JSON models (~0.1 s per client); this one keeps them.
    """
    return boto3.Session(region_name=REGION)


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def make_table(aws: None, aws_session: boto3.Session) -> Callable[[str, str], Any]:
    """Create a table with a string partition key; returns the Table resource the handlers use."""

    def create(name: str, key: str) -> Any:
        aws_session.client("dynamodb").create_table(
            TableName=name,
            KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        return db_utils.table(name)

    return create


@pytest.fixture
def users_table(make_table: Callable[[str, str], Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("USERS_TABLE", "users")
    return make_table("users", "user_id")


@pytest.fixture
def make_secret(aws: None, aws_session: boto3.Session) -> Callable[[str, str], str]:
    """Create a Secrets Manager secret; returns its ARN."""

    def create(name: str, value: str) -> str:
        return aws_session.client("secretsmanager").create_secret(Name=name, SecretString=value)[
            "ARN"
        ]

    return create


# --- local HTTP servers -----------------------------------------------------


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


RouteResult = tuple[int, Any]  # status, and a dict/list (sent as JSON), str or bytes
Route = Callable[[Recorded], RouteResult]


@dataclass
class LocalServer:
    """An HTTP server on 127.0.0.1 answering from a route table, recording requests."""

    routes: dict[str, Route]
    requests: list[Recorded] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                path = self.path.split("?", 1)[0]
                request = Recorded(
                    self.command, self.path, dict(self.headers), self.rfile.read(length)
                )
                server.requests.append(request)
                route = server.routes.get(path)
                status, payload = route(request) if route else (404, {"error": "no route"})
                if isinstance(payload, (dict, list)):
                    payload, content_type = json.dumps(payload), "application/json"
                else:
                    content_type = "text/plain"
                body = payload.encode() if isinstance(payload, str) else payload
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            do_GET = do_POST = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}{path}"

    def stall(self, seconds: float = 5.0) -> Route:
        """A route that answers only after ``seconds``, or when the test ends."""

        def route(request: Recorded) -> RouteResult:
            self.release.wait(seconds)
            return 200, {}

        return route

    def stop(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve() -> Iterator[Callable[[dict[str, Route]], LocalServer]]:
    """Start LocalServers for the test; they are stopped when it ends."""
    servers: list[LocalServer] = []

    def start(routes: dict[str, Route]) -> LocalServer:
        server = LocalServer(routes)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


# --- Cognito ----------------------------------------------------------------


@pytest.fixture(scope="session")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def foreign_key() -> rsa.RSAPrivateKey:
    """A key the user pool does not publish."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class FakeCognito:
    """Tokens as the user pool would issue them, and a JWKS server publishing its key."""

    key: rsa.RSAPrivateKey
    server: LocalServer
    issuer: str = ISSUER
    client_id: str = CLIENT_ID

    def sign(
        self, claims: dict[str, Any], key: rsa.RSAPrivateKey | None = None, kid: str = KEY_ID
    ) -> str:
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers={"kid": kid})

    def _base_claims(self) -> dict[str, Any]:
        now = int(time.time())
        return {
            "sub": "user-sub-1",
            "iss": self.issuer,
            "iat": now,
            "auth_time": now,
            "exp": now + 3600,
        }

    def access_token(self, key: rsa.RSAPrivateKey | None = None, **overrides: Any) -> str:
        claims = {
            **self._base_claims(),
            "token_use": "access",
            "client_id": self.client_id,
            "username": "alice",
            "scope": "openid email",
            "cognito:groups": ["admins", "staff"],
            **overrides,
        }
        return self.sign({k: v for k, v in claims.items() if v is not None}, key)

    def id_token(self, key: rsa.RSAPrivateKey | None = None, **overrides: Any) -> str:
        claims = {
            **self._base_claims(),
            "token_use": "id",
            "aud": self.client_id,
            "email": "alice@example.com",
            "cognito:username": "alice",
            **overrides,
        }
        return self.sign({k: v for k, v in claims.items() if v is not None}, key)


@pytest.fixture
def cognito(
    serve: Callable[[dict[str, Route]], LocalServer],
    signing_key: rsa.RSAPrivateKey,
    monkeypatch: pytest.MonkeyPatch,
) -> FakeCognito:
    """A user pool whose JWKS is served locally; the handlers are configured for it."""
    jwk = {
        **RSAAlgorithm.to_jwk(signing_key.public_key(), as_dict=True),
        "kid": KEY_ID,
        "alg": "RS256",
        "use": "sig",
    }
    server = serve({"/.well-known/jwks.json": lambda request: (200, {"keys": [jwk]})})
    monkeypatch.setenv("COGNITO_ISSUER", ISSUER)
    monkeypatch.setenv("COGNITO_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("JWKS_URL", server.url("/.well-known/jwks.json"))
    return FakeCognito(signing_key, server)
