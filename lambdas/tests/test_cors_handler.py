"""The preflight function: allowed origins get the CORS headers, others do not."""

from __future__ import annotations

from typing import Any

import pytest

import cors_handler

ORIGINS = "https://app.example.com, http://localhost:3000/"


def preflight(origin: str | None, method: str = "OPTIONS") -> dict[str, Any]:
    headers = {"origin": origin, "Access-Control-Request-Method": "POST"} if origin else {}
    return {"httpMethod": method, "path": "/users", "headers": headers}


@pytest.fixture(autouse=True)
def allowed_origins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLOWED_ORIGINS", ORIGINS)


@pytest.mark.parametrize("origin", ["https://app.example.com", "http://localhost:3000"])
def test_allowed_origin_gets_cors_headers(origin: str, lambda_context: Any) -> None:
    response = cors_handler.lambda_handler(preflight(origin), lambda_context)

    assert response["statusCode"] == 204
    headers = response["headers"]
    assert headers["Access-Control-Allow-Origin"] == origin
    assert headers["Access-Control-Allow-Credentials"] == "true"
    assert "POST" in headers["Access-Control-Allow-Methods"]
    assert "Authorization" in headers["Access-Control-Allow-Headers"]
    assert headers["Vary"] == "Origin"


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example.com",
        "https://app.example.com.evil.net",
        "http://app.example.com",
        None,
    ],
)
def test_other_origins_get_no_cors_headers(origin: str | None, lambda_context: Any) -> None:
    response = cors_handler.lambda_handler(preflight(origin), lambda_context)

    assert response["statusCode"] == 403
    assert not any(name.startswith("Access-Control-") for name in response["headers"])


def test_only_answers_preflights(lambda_context: Any) -> None:
    response = cors_handler.lambda_handler(
        preflight("https://app.example.com", "GET"), lambda_context
    )

    assert response["statusCode"] == 405
    assert response["headers"]["Allow"] == "OPTIONS"


def test_missing_configuration_refuses_everyone(
    monkeypatch: pytest.MonkeyPatch, lambda_context: Any
) -> None:
    monkeypatch.delenv("ALLOWED_ORIGINS")

    response = cors_handler.lambda_handler(preflight("https://app.example.com"), lambda_context)

    assert response["statusCode"] == 500
    assert "Access-Control-Allow-Origin" not in response["headers"]
