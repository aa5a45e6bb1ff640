"""Domain errors and the HTTP status code each one maps to.

Handlers raise these instead of building error responses themselves, so that
the status codes and the error body shape stay the same across functions
(see ``shared.response.api_handler``). An error's message is shown to the
client only when ``expose`` is true; otherwise it is logged and the client
gets a generic message, so internals (variable names, AWS error details)
never reach a response.
"""

from __future__ import annotations


class AppError(Exception):
    """Base class: an error with an HTTP status and a machine-readable code."""

    status_code = 500
    code = "internal_error"
    expose = False
    public_message = "Internal server error"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.public_message)

    @property
    def client_message(self) -> str:
        return str(self) if self.expose else self.public_message


class BadRequestError(AppError):
    """The request is malformed or fails validation (400)."""

    status_code = 400
    code = "bad_request"
    expose = True


class UnauthorizedError(AppError):
    """The caller could not be authenticated (401)."""

    status_code = 401
    code = "unauthorized"
    expose = True


class ForbiddenError(AppError):
    """The caller is known to be not allowed, e.g. a bad webhook signature (403)."""

    status_code = 403
    code = "forbidden"
    expose = True


class NotFoundError(AppError):
    """The addressed resource does not exist (404)."""

    status_code = 404
    code = "not_found"
    expose = True


class MethodNotAllowedError(AppError):
    """The route exists but not with this HTTP method (405)."""

    status_code = 405
    code = "method_not_allowed"
    expose = True


class ConfigurationError(AppError):
    """The function is deployed without a setting it needs (500, details logged only)."""

    code = "configuration_error"


class UpstreamError(AppError):
    """A service this function depends on failed or answered nonsense (502)."""

    status_code = 502
    code = "upstream_error"
    expose = True


class UpstreamTimeoutError(UpstreamError):
    """A service this function depends on did not answer in time (503)."""

    status_code = 503
    code = "upstream_timeout"


class SecretUnavailableError(AppError):
    """A secret the function needs could not be read (500, details logged only)."""

    code = "secret_unavailable"
