"""API Gateway REQUEST authorizer: Cognito access tokens → IAM policies.

The token is taken from ``Authorization: Bearer <token>`` or, failing that,
from the ``access_token`` cookie the ``auth`` function sets (HttpOnly cookies
cannot be read by the page's scripts to build the header). It is accepted when

* its RS256 signature verifies against the user pool's JWKS (fetched with
  ``jwt.PyJWKClient`` and cached by the warm container),
* it has not expired and was issued by the configured pool (``iss``),
* it is an access token (``token_use``) issued to the configured app client
  (``client_id``).

An accepted token gets an Allow policy for the whole API stage (so a cached
policy also covers the other routes), with the user's claims in the context
(``event.requestContext.authorizer.<claim>`` for the integrations). Anything
else gets a Deny policy, i.e. 403, and a log line saying why.

Configure the API's authorizer without identity sources (or with caching
disabled): the token may arrive in either header.

Environment:
    COGNITO_ISSUER        issuer URL, https://cognito-idp.<region>.amazonaws.com/<pool id>;
                          or instead:
    COGNITO_USER_POOL_ID  the pool id, <region>_<id>: the issuer is built from it.
    COGNITO_CLIENT_ID     required. The app client whose access tokens are accepted.
    JWKS_URL              optional. Default <issuer>/.well-known/jwks.json.
    HTTP_TIMEOUT_SECONDS  optional. Timeout for fetching the JWKS, default 3.
    LOG_LEVEL             optional. Default INFO.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import jwt

from shared import cognito
from shared.config import env_seconds
from shared.errors import AppError, ConfigurationError
from shared.logging_utils import bind_lambda_context
from shared.request import get_cookie, get_header

logger = logging.getLogger(__name__)

ACCESS_TOKEN_COOKIE = "access_token"
DEFAULT_TIMEOUT_SECONDS = 3.0
# Claims handed to the integrations; context values must be strings, numbers or booleans.
CONTEXT_CLAIMS = ("sub", "username", "scope", "client_id")


@functools.lru_cache(maxsize=4)
def _jwks_client(url: str, timeout: float) -> jwt.PyJWKClient:
    # One client per URL lives as long as the container; it caches the key set.
    return jwt.PyJWKClient(url, cache_keys=True, timeout=timeout)


def _bearer_token(event: dict[str, Any]) -> str | None:
    header = get_header(event, "Authorization") or ""
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return get_cookie(event, ACCESS_TOKEN_COOKIE)


def _verify(token: str) -> dict[str, Any]:
    settings = cognito.settings()
    timeout = env_seconds("HTTP_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS)
    signing_key = _jwks_client(settings.jwks_url, timeout).get_signing_key_from_jwt(token)
    claims = jwt.decode(
        token,
        signing_key.key,
        algorithms=["RS256"],
        issuer=settings.issuer,
        options={"require": ["exp", "iat", "iss", "sub", "token_use"]},
    )
    cognito.check_claims(claims, token_use="access", client_id=settings.client_id)
    return claims


def _stage_arn(method_arn: str) -> str:
    """arn:…:api-id/stage/GET/users/1 → arn:…:api-id/stage/*/* (every route of the stage)."""
    api_and_stage = method_arn.split("/", 2)[:2]
    return "/".join([*api_and_stage, "*", "*"])


def _policy(
    principal_id: str, effect: str, method_arn: str, context: dict[str, Any]
) -> dict[str, Any]:
    return {
        "principalId": principal_id,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Action": "execute-api:Invoke",
                    "Effect": effect,
                    "Resource": _stage_arn(method_arn),
                }
            ],
        },
        "context": context,
    }


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    bind_lambda_context(context)
    method_arn = event.get("methodArn", "")
    token = _bearer_token(event)
    if not token:
        logger.info("denied: no token")
        return _policy("anonymous", "Deny", method_arn, {})
    try:
        claims = _verify(token)
    except (jwt.PyJWTError, AppError) as error:
        # Fail closed, also when the JWKS is unreachable or the function misconfigured,
        # but log those as errors: they deny every caller.
        denies_everyone = isinstance(error, (jwt.PyJWKClientConnectionError, ConfigurationError))
        logger.log(
            logging.ERROR if denies_everyone else logging.INFO,
            "denied: %s",
            error,
            extra={"reason": type(error).__name__},
        )
        return _policy("anonymous", "Deny", method_arn, {})
    groups = claims.get("cognito:groups") or []
    user_context = {name: str(claims[name]) for name in CONTEXT_CLAIMS if name in claims}
    user_context["groups"] = ",".join(groups)
    logger.info("allowed", extra={"sub": claims["sub"]})
    return _policy(claims["sub"], "Allow", method_arn, user_context)
