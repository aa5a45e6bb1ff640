"""Fixtures shared by the suite, and the import layout Lambda would use.

Lambda puts the function's folder at /var/task and the ``shared`` layer at
/opt/python/shared: here ``lambdas/`` (for ``shared``) and each function
folder go on sys.path the same way, so the handlers import exactly as they
do in production (``import users_handler``, ``from shared import …``);
lambdas/events goes there too, for ``import world``.

Everything outside the process is faked on 127.0.0.1 or in memory, by the
world of lambdas/events/world.py that the sample events run against too:
AWS through moto, Cognito (its user pool's key and tokens, its JWKS served
locally) and the HTTP services through its HttpFake servers, started per
test.
"""

from __future__ import annotations

import logging
import socket
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from moto import mock_aws

ROOT = Path(__file__).resolve().parents[2]
LAMBDAS = ROOT / "lambdas"
BUILD_CONFIG = tomllib.loads((ROOT / "Cargo.toml").read_text())
FUNCTIONS = BUILD_CONFIG["workspace"]["metadata"]["lambda"]["functions"]

# Keep the function folders free of __pycache__: they are what gets zipped.
sys.dont_write_bytecode = True
for entry in [
    LAMBDAS,
    LAMBDAS / "events",
    *(ROOT / function["source"] for function in FUNCTIONS.values()),
]:
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

# These need the paths above.
import world  # noqa: E402
from shared import db_utils, secrets_cache  # noqa: E402
from world import HttpFake, Route  # noqa: E402

_connect = socket.socket.connect


def _loopback_only(sock: socket.socket, address: Any) -> None:
    """Fail whatever opens a connection anywhere but 127.0.0.1, imports included."""
    if sock.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in ("127.0.0.1", "::1"):
        raise RuntimeError(f"the tests must not reach {address}")
    return _connect(sock, address)


socket.socket.connect = _loopback_only  # type: ignore[method-assign,assignment]

REGION = world.REGION

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
        world.create_table(aws_session.client("dynamodb"), name, key)
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
        return world.create_secret(aws_session.client("secretsmanager"), name, value)

    return create


# --- local HTTP servers -----------------------------------------------------


@pytest.fixture
def serve() -> Iterator[Callable[[dict[str, Route]], HttpFake]]:
    """Start HttpFakes for the test; they are stopped when it ends."""
    servers: list[HttpFake] = []

    def start(routes: dict[str, Route]) -> HttpFake:
        server = HttpFake("local", routes)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


# --- Cognito ----------------------------------------------------------------


@pytest.fixture(scope="session")
def foreign_key() -> rsa.RSAPrivateKey:
    """A key the user pool does not publish."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class FakeCognito:
    """The world's user pool: Alice's tokens as it issues them, its JWKS served by ``server``."""

    server: HttpFake
    issuer: str = world.ISSUER
    client_id: str = world.CLIENT_ID

    def sign(
        self, claims: dict[str, Any], key: rsa.RSAPrivateKey | None = None, kid: str = world.KEY_ID
    ) -> str:
        return world.sign(claims, key, kid)

    def access_token(self, key: rsa.RSAPrivateKey | None = None, **overrides: Any) -> str:
        """Alice's access token, valid for an hour; an override of None leaves a claim out."""
        now = int(time.time())
        claims = {**world.access_claims(now, now + 3600), **overrides}
        return self.sign({k: v for k, v in claims.items() if v is not None}, key)

    def id_token(self, key: rsa.RSAPrivateKey | None = None, **overrides: Any) -> str:
        """Alice's ID token, valid for an hour; an override of None leaves a claim out."""
        now = int(time.time())
        claims = {**world.id_claims(now, now + 3600), **overrides}
        return self.sign({k: v for k, v in claims.items() if v is not None}, key)


@pytest.fixture
def cognito(
    serve: Callable[[dict[str, Route]], HttpFake], monkeypatch: pytest.MonkeyPatch
) -> FakeCognito:
    """The user pool, its JWKS served locally; the handlers are configured for it."""
    keys = world.jwks()
    server = serve({world.JWKS_PATH: lambda request: (200, keys)})
    monkeypatch.setenv("COGNITO_ISSUER", world.ISSUER)
    monkeypatch.setenv("COGNITO_CLIENT_ID", world.CLIENT_ID)
    monkeypatch.setenv("JWKS_URL", server.url(world.JWKS_PATH))
    return FakeCognito(server)
