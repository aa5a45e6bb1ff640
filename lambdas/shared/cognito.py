"""Cognito user pool settings and the token checks PyJWT does not do.

Both ``auth`` (ID tokens from the token endpoint) and ``authorizer`` (access
tokens on API calls) verify Cognito JWTs. The signature, expiry and issuer are
checked with PyJWT in the handlers — this package must not depend on PyJWT,
the ``users`` function loads it without the ``jwt`` layer — and the
Cognito-specific claims are checked here so both functions agree on them.

Cognito's tokens (https://docs.aws.amazon.com/cognito/latest/developerguide/amazon-cognito-user-pools-using-tokens-verifying-a-jwt.html):
the ID token names the app client in ``aud``, the access token in
``client_id`` (it has no ``aud``); ``token_use`` is ``id`` or ``access``.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any, Literal

from shared.config import optional_env, require_env
from shared.errors import ConfigurationError, UnauthorizedError

TokenUse = Literal["id", "access"]


@dataclass(frozen=True)
class CognitoSettings:
    issuer: str
    client_id: str
    jwks_url: str


def settings() -> CognitoSettings:
    """Read the pool's settings from the environment.

    ``COGNITO_ISSUER`` wins; otherwise the issuer is built from
    ``COGNITO_USER_POOL_ID``, whose prefix is the pool's region
    (``eu-west-1_AbC123`` → ``https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC123``).
    ``JWKS_URL`` defaults to the issuer's well-known JWKS document.
    """
    issuer = optional_env("COGNITO_ISSUER", "")
    if not issuer:
        pool_id = require_env("COGNITO_USER_POOL_ID")
        region, separator, _ = pool_id.partition("_")
        if not (separator and region):
            raise ConfigurationError(f"COGNITO_USER_POOL_ID {pool_id!r} is not <region>_<id>")
        issuer = f"https://cognito-idp.{region}.amazonaws.com/{pool_id}"
    issuer = issuer.rstrip("/")
    return CognitoSettings(
        issuer=issuer,
        client_id=require_env("COGNITO_CLIENT_ID"),
        jwks_url=optional_env("JWKS_URL", f"{issuer}/.well-known/jwks.json"),
    )


def check_claims(claims: dict[str, Any], *, token_use: TokenUse, client_id: str) -> None:
    """Reject a signature-verified token of the wrong kind or for another app client."""
    if claims.get("token_use") != token_use:
        raise UnauthorizedError(f"expected a Cognito {token_use} token")
    audience = claims.get("aud" if token_use == "id" else "client_id")
    if not isinstance(audience, str) or not hmac.compare_digest(audience, client_id):
        raise UnauthorizedError("token was issued to another app client")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise UnauthorizedError("token has no subject")
