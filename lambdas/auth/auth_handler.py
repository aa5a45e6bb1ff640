"""OAuth2 authorization-code callback for the Cognito hosted UI.

Cognito redirects the browser to ``GET /auth/callback?code=…&state=…`` after
login. This function

1. checks ``state`` against the ``oauth_state`` cookie that the page set
   before sending the browser to the hosted UI (so a login started by
   somebody else cannot be completed in this browser: login CSRF);
2. exchanges the code at the pool's token endpoint (``requests``), with the
   app client's secret when one is configured;
3. verifies the ID token it got back: RS256 signature against the pool's
   JWKS, expiry, issuer, audience (the app client) and ``token_use = id``;
4. records the user in the users table (``user_id`` = the token's ``sub``),
   creating the item on first login;
5. redirects to the application with the tokens in Secure, HttpOnly cookies,
   out of reach of the page's scripts.

A refused code is a 400; a token endpoint that fails is a 502, one that does
not answer in time a 503.

Environment:
    COGNITO_ISSUER              issuer URL, https://cognito-idp.<region>.amazonaws.com/<pool id>;
                                or instead:
    COGNITO_USER_POOL_ID        the pool id, <region>_<id>: the issuer is built from it.
    COGNITO_CLIENT_ID           required. The app client id.
    COGNITO_CLIENT_SECRET_ARN   optional. Secrets Manager secret holding the app client's
                                secret (plain string), for clients that have one.
    COGNITO_DOMAIN              required. The hosted UI domain, e.g. auth.example.com or
                                my-app.auth.eu-west-1.amazoncognito.com (https:// assumed
                                when no scheme is given); the token endpoint is
                                <domain>/oauth2/token.
    COGNITO_REDIRECT_URI        required. This callback's URL, exactly as registered
                                on the app client.
    POST_LOGIN_REDIRECT_URL     required. Where the browser goes after a successful login.
    USERS_TABLE                 required. DynamoDB users table (partition key ``user_id``).
    JWKS_URL                    optional. Default <issuer>/.well-known/jwks.json.
    HTTP_TIMEOUT_SECONDS        optional. Timeout of each call to Cognito, default 5.
    ALLOWED_ORIGINS             optional. Origins that get CORS headers on error responses.
    LOG_LEVEL                   optional. Default INFO.
"""

from __future__ import annotations

import functools
import hmac
import logging
from typing import Any

import jwt
import requests

from shared import cognito, db_utils
from shared.config import env_seconds, optional_env, require_env
from shared.errors import BadRequestError, UnauthorizedError, UpstreamError, UpstreamTimeoutError
from shared.request import get_cookie, query_params
from shared.response import Event, Response, api_handler, build_response, set_cookie
from shared.secrets_cache import get_secret

logger = logging.getLogger(__name__)

STATE_COOKIE = "oauth_state"
DEFAULT_TIMEOUT_SECONDS = 5.0
# Cognito's default refresh token validity; the cookie should not outlive the token.
REFRESH_TOKEN_MAX_AGE_SECONDS = 30 * 24 * 3600


@functools.lru_cache(maxsize=4)
def _jwks_client(url: str, timeout: float) -> jwt.PyJWKClient:
    # One client per URL lives as long as the container; it caches the key set.
    return jwt.PyJWKClient(url, cache_keys=True, timeout=timeout)


def _token_endpoint() -> str:
    domain = require_env("COGNITO_DOMAIN").rstrip("/")
    if "://" not in domain:
        domain = f"https://{domain}"
    return f"{domain}/oauth2/token"


def _check_state(event: Event) -> None:
    state = query_params(event).get("state")
    expected = get_cookie(event, STATE_COOKIE)
    if not (state and expected and hmac.compare_digest(state, expected)):
        raise BadRequestError("login state does not match: start the login again")


def _exchange_code(code: str, client_id: str, timeout: float) -> dict[str, Any]:
    secret_arn = optional_env("COGNITO_CLIENT_SECRET_ARN", "")
    auth = (client_id, get_secret(secret_arn)) if secret_arn else None
    form = {
        "grant_type": "authorization_code",
        "client_id": client_id,
        "code": code,
        "redirect_uri": require_env("COGNITO_REDIRECT_URI"),
    }
    try:
        response = requests.post(_token_endpoint(), data=form, auth=auth, timeout=timeout)
    except requests.Timeout:
        raise UpstreamTimeoutError("the login service did not answer in time") from None
    except requests.RequestException as error:
        logger.error("token endpoint unreachable", extra={"error": type(error).__name__})
        raise UpstreamError("the login service is unreachable") from None
    if response.status_code == 400:
        # invalid_grant and friends: the code was used, expired or not ours.
        logger.warning("token endpoint refused the code", extra={"status": response.status_code})
        raise BadRequestError("the login code was refused: start the login again")
    try:
        tokens = response.json() if response.ok else None
    except ValueError:
        tokens = None
    if not isinstance(tokens, dict) or not all(
        isinstance(tokens.get(name), str) for name in ("id_token", "access_token")
    ):
        logger.error("unexpected token endpoint answer", extra={"status": response.status_code})
        raise UpstreamError("the login service answered unexpectedly")
    return tokens


def _verify_id_token(
    id_token: str, settings: cognito.CognitoSettings, timeout: float
) -> dict[str, Any]:
    try:
        signing_key = _jwks_client(settings.jwks_url, timeout).get_signing_key_from_jwt(id_token)
        claims = jwt.decode(
            id_token,
            signing_key.key,
            algorithms=["RS256"],
            issuer=settings.issuer,
            audience=settings.client_id,
            options={"require": ["exp", "iat", "iss", "aud", "sub", "token_use"]},
        )
    except jwt.PyJWKClientConnectionError:
        raise UpstreamError("the login service's signing keys are unreachable") from None
    except jwt.PyJWTError as error:
        raise UnauthorizedError(f"invalid ID token: {error}") from None
    cognito.check_claims(claims, token_use="id", client_id=settings.client_id)
    return claims


def _record_login(claims: dict[str, Any]) -> None:
    """Create or refresh the user's item from the ID token's profile claims."""
    now = db_utils.utc_now()
    profile = {
        "email": claims.get("email"),
        "name": claims.get("name") or claims.get("cognito:username"),
    }
    values = {field: value for field, value in profile.items() if isinstance(value, str) and value}
    db_utils.table(require_env("USERS_TABLE")).update_item(
        Key={"user_id": claims["sub"]},
        **db_utils.set_attributes(
            {**values, "updated_at": now, "last_login_at": now}, if_absent={"created_at": now}
        ),
    )


def _auth_routes_path(event: Event) -> str:
    """The folder of this callback's path, e.g. /prod/auth: where the refresh token is sent.

    Taken from the request, which includes the stage (or a custom domain's base path).
    """
    path = (event.get("requestContext") or {}).get("path") or event.get("path") or "/"
    return path.rsplit("/", 1)[0] or "/"


def _token_cookies(tokens: dict[str, Any], refresh_path: str) -> list[str]:
    expires_in = tokens.get("expires_in")
    max_age = expires_in if isinstance(expires_in, int) and expires_in > 0 else 3600
    cookies = [
        set_cookie("id_token", tokens["id_token"], max_age=max_age),
        set_cookie("access_token", tokens["access_token"], max_age=max_age),
        set_cookie(STATE_COOKIE, "", max_age=0),
    ]
    if isinstance(tokens.get("refresh_token"), str):
        cookies.append(
            set_cookie(
                "refresh_token",
                tokens["refresh_token"],
                max_age=REFRESH_TOKEN_MAX_AGE_SECONDS,
                path=refresh_path,
                same_site="Strict",
            )
        )
    return cookies


@api_handler
def lambda_handler(event: Event, context: Any) -> Response:
    params = query_params(event)
    if "error" in params:
        logger.warning("login failed at the hosted UI", extra={"oauth_error": params["error"]})
        raise BadRequestError("login was not completed")
    code = params.get("code")
    if not code:
        raise BadRequestError("missing authorization code")
    _check_state(event)
    settings = cognito.settings()
    timeout = env_seconds("HTTP_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS)
    tokens = _exchange_code(code, settings.client_id, timeout)
    claims = _verify_id_token(tokens["id_token"], settings, timeout)
    _record_login(claims)
    logger.info("login", extra={"sub": claims["sub"]})
    return build_response(
        302,
        event=event,
        headers={"Location": require_env("POST_LOGIN_REDIRECT_URL")},
        cookies=_token_cookies(tokens, _auth_routes_path(event)),
    )
