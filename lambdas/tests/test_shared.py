"""The shared layer's building blocks, beyond what the handler tests exercise."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import pytest

from shared import config, db_utils, secrets_cache
from shared.errors import BadRequestError, ConfigurationError, NotFoundError, SecretUnavailableError
from shared.logging_utils import JsonFormatter, bind_lambda_context
from shared.request import get_cookie, get_header, json_body
from shared.response import api_handler, set_cookie

# --- config -----------------------------------------------------------------


def test_missing_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BLANK", "  ")

    for name in ("NOT_SET_ANYWHERE", "BLANK"):
        with pytest.raises(ConfigurationError, match=name):
            config.require_env(name)


def test_optional_and_list_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORIGINS", " https://a.example , ,https://b.example")

    assert config.env_list("ORIGINS") == ["https://a.example", "https://b.example"]
    assert config.env_list("NOT_SET_ANYWHERE") == []
    assert config.optional_env("NOT_SET_ANYWHERE", "fallback") == "fallback"


@pytest.mark.parametrize("raw", ["soon", "0", "-1", "nan", "inf"])
def test_bad_timeouts_are_configuration_errors(raw: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIMEOUT", raw)

    with pytest.raises(ConfigurationError, match="TIMEOUT"):
        config.env_seconds("TIMEOUT", 1.0)


def test_timeout_default_and_value(monkeypatch: pytest.MonkeyPatch) -> None:
    assert config.env_seconds("TIMEOUT", 2.5) == 2.5
    monkeypatch.setenv("TIMEOUT", "0.25")
    assert config.env_seconds("TIMEOUT", 2.5) == 0.25


# --- request ----------------------------------------------------------------


def test_headers_ignore_case() -> None:
    event = {"headers": {"x-thing": "v"}}

    assert get_header(event, "X-Thing") == "v"
    assert get_header(event, "X-Other") is None
    assert get_header({"headers": None}, "X-Thing") is None


def test_cookies_survive_other_applications_malformed_cookies() -> None:
    event = {"headers": {"cookie": 'prefs={"a b"}; broken; token=abc.def==; other=1'}}

    assert get_cookie(event, "token") == "abc.def=="
    assert get_cookie(event, "broken") is None
    assert get_cookie({"headers": {}}, "token") is None


def test_json_body_decodes_base64() -> None:
    body = base64.b64encode(b'{"k": "v"}').decode()

    assert json_body({"body": body, "isBase64Encoded": True}) == {"k": "v"}


@pytest.mark.parametrize("body", ["not base64!", base64.b64encode(b"\xff\xfe").decode()])
def test_bad_base64_body_is_400(body: str) -> None:
    with pytest.raises(BadRequestError):
        json_body({"body": body, "isBase64Encoded": True})


# --- response ---------------------------------------------------------------


def test_api_handler_maps_errors_to_status_codes(lambda_context: Any) -> None:
    @api_handler
    def missing(event: dict[str, Any], context: Any) -> dict[str, Any]:
        raise NotFoundError("user 7 not found")

    response = missing({}, lambda_context)

    assert response["statusCode"] == 404
    assert response["headers"]["Content-Type"] == "application/json"
    assert json.loads(response["body"]) == {
        "error": {"code": "not_found", "message": "user 7 not found"}
    }


def test_api_handler_hides_unexpected_errors(
    lambda_context: Any, caplog: pytest.LogCaptureFixture
) -> None:
    @api_handler
    def broken(event: dict[str, Any], context: Any) -> dict[str, Any]:
        raise RuntimeError("database password is hunter2")

    response = broken({}, lambda_context)

    assert response["statusCode"] == 500
    assert json.loads(response["body"]) == {
        "error": {"code": "internal_error", "message": "Internal server error"}
    }
    assert "RuntimeError" in caplog.text  # the traceback is logged for the operators


def test_set_cookie_is_secure_and_http_only() -> None:
    cookie = set_cookie("token", "abc.def", max_age=60, path="/auth", same_site="Strict")

    assert cookie == "token=abc.def; HttpOnly; Max-Age=60; Path=/auth; SameSite=Strict; Secure"


# --- db_utils ---------------------------------------------------------------


def test_page_token_round_trip() -> None:
    key = {"user_id": "42", "other": "é"}

    assert db_utils.decode_page_token(db_utils.encode_page_token(key)) == key


@pytest.mark.parametrize("value", ["{}", '{"user_id": 7}', '"text"'])
def test_page_token_must_be_a_key(value: str) -> None:
    token = base64.urlsafe_b64encode(value.encode()).decode()

    with pytest.raises(BadRequestError):
        db_utils.decode_page_token(token)


def test_set_attributes_uses_placeholders() -> None:
    args = db_utils.set_attributes({"name": "A"}, if_absent={"created_at": "t"})

    assert args == {
        "UpdateExpression": (
            "SET #name = :name, #created_at = if_not_exists(#created_at, :created_at)"
        ),
        "ExpressionAttributeNames": {"#name": "name", "#created_at": "created_at"},
        "ExpressionAttributeValues": {":name": "A", ":created_at": "t"},
    }


# --- secrets_cache ----------------------------------------------------------


def test_secret_is_read_once_and_cached(make_secret: Any, aws_session: Any) -> None:
    arn = make_secret("api-key", "value-1")
    assert secrets_cache.get_secret(arn) == "value-1"

    aws_session.client("secretsmanager").put_secret_value(SecretId=arn, SecretString="value-2")

    assert secrets_cache.get_secret(arn) == "value-1"
    secrets_cache.clear_cache()
    assert secrets_cache.get_secret(arn) == "value-2"


def test_cached_secret_expires(
    make_secret: Any, aws_session: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    arn = make_secret("api-key", "value-1")
    secrets_cache.get_secret(arn)
    aws_session.client("secretsmanager").put_secret_value(SecretId=arn, SecretString="value-2")

    monkeypatch.setattr(secrets_cache, "TTL_SECONDS", 0.0)

    assert secrets_cache.get_secret(arn) == "value-2"


def test_missing_secret_is_secret_unavailable(aws: None) -> None:
    with pytest.raises(SecretUnavailableError, match="ResourceNotFoundException") as raised:
        secrets_cache.get_secret("no-such-secret")

    assert raised.value.client_message == "Internal server error"


# --- logging ----------------------------------------------------------------


def test_log_lines_are_json_with_request_id_and_extras(lambda_context: Any) -> None:
    bind_lambda_context(lambda_context)
    record = logging.LogRecord("users", logging.INFO, __file__, 1, "user %s created", ("7",), None)
    record.user_id = "7"

    line = json.loads(JsonFormatter().format(record))

    assert line["message"] == "user 7 created"
    assert line["level"] == "INFO"
    assert line["request_id"] == lambda_context.aws_request_id
    assert line["user_id"] == "7"


def test_debug_level_does_not_let_botocore_print_secrets(
    make_secret: Any,
    monkeypatch: pytest.MonkeyPatch,
    lambda_context: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    arn = make_secret("api-key", "super-secret-value")
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    bind_lambda_context(lambda_context)

    assert secrets_cache.get_secret(arn) == "super-secret-value"

    assert logging.getLogger().getEffectiveLevel() == logging.DEBUG
    assert "super-secret-value" not in caplog.text
