"""The Twilio webhook: signatures, conversation memory, OpenAI failures, secrecy."""

from __future__ import annotations

import base64
import json
import time
from typing import Any
from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator

import sms_handler

WEBHOOK_URL = "https://api.example.com/prod/sms?channel=main"
TWILIO_TOKEN = "twilio-auth-token-SECRET-0123456789"
OPENAI_KEY = "sk-test-SECRET-openai-key-9876543210"
SENDER = "+15551230000"


@pytest.fixture
def openai(serve: Any) -> Any:
    """A chat completions endpoint answering ``openai.answer`` (status, payload)."""
    server = serve({})
    server.answer = (
        200,
        {"choices": [{"message": {"role": "assistant", "content": " Hello from the bot. "}}]},
    )
    server.routes["/v1/chat/completions"] = lambda request: server.answer
    return server


@pytest.fixture
def conversations(make_table: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("CONVERSATIONS_TABLE", "conversations")
    return make_table("conversations", "phone_number")


@pytest.fixture(autouse=True)
def configured(
    openai: Any, conversations: Any, make_secret: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_WEBHOOK_URL", WEBHOOK_URL)
    monkeypatch.setenv(
        "TWILIO_AUTH_TOKEN_SECRET_ARN", make_secret("twilio-auth-token", TWILIO_TOKEN)
    )
    monkeypatch.setenv("OPENAI_API_KEY_SECRET_ARN", make_secret("openai-api-key", OPENAI_KEY))
    monkeypatch.setenv("OPENAI_API_URL", openai.url("/v1/chat/completions"))


def webhook(
    body: str = "Hi there",
    *,
    sender: str = SENDER,
    token: str = TWILIO_TOKEN,
    url: str = WEBHOOK_URL,
    signature: str | None = None,
    base64_body: bool = False,
    **extra: str,
) -> dict[str, Any]:
    params = {
        "MessageSid": "SM0001",
        "AccountSid": "AC0001",
        "From": sender,
        "To": "+15550000000",
        "Body": body,
        **extra,
    }
    if signature is None:
        signature = RequestValidator(token).compute_signature(url, params)
    form = urlencode(params)
    return {
        "httpMethod": "POST",
        "path": "/sms",
        "headers": {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
        },
        "body": base64.b64encode(form.encode()).decode() if base64_body else form,
        "isBase64Encoded": base64_body,
    }


def chat_requests(openai: Any) -> list[dict[str, Any]]:
    return [json.loads(request.body) for request in openai.requests]


def test_reply_is_twiml_from_openai(openai: Any, conversations: Any, lambda_context: Any) -> None:
    response = sms_handler.lambda_handler(webhook("What is 2+2?"), lambda_context)

    assert response["statusCode"] == 200
    assert response["headers"]["Content-Type"] == "application/xml"
    assert "<Response><Message>Hello from the bot.</Message></Response>" in response["body"]
    [request] = openai.requests
    assert request.headers["Authorization"] == f"Bearer {OPENAI_KEY}"
    [payload] = chat_requests(openai)
    assert payload["model"] == "gpt-4o-mini"
    assert payload["messages"][0]["role"] == "system"
    assert payload["messages"][1:] == [{"role": "user", "content": "What is 2+2?"}]
    item = conversations.get_item(Key={"phone_number": SENDER})["Item"]
    assert item["messages"] == [
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "Hello from the bot."},
    ]
    assert item["expires_at"] > time.time()


def test_conversation_is_remembered_per_sender(openai: Any, lambda_context: Any) -> None:
    sms_handler.lambda_handler(webhook("first"), lambda_context)
    sms_handler.lambda_handler(webhook("from someone else", sender="+15559999999"), lambda_context)
    sms_handler.lambda_handler(webhook("second"), lambda_context)

    messages = chat_requests(openai)[-1]["messages"][1:]
    assert [message["content"] for message in messages] == [
        "first",
        "Hello from the bot.",
        "second",
    ]


def test_history_is_capped(openai: Any, conversations: Any, lambda_context: Any) -> None:
    for i in range(sms_handler.MAX_HISTORY_MESSAGES):
        sms_handler.lambda_handler(webhook(f"message {i}"), lambda_context)

    stored = conversations.get_item(Key={"phone_number": SENDER})["Item"]["messages"]
    assert len(stored) == sms_handler.MAX_HISTORY_MESSAGES
    assert stored[-2]["content"] == f"message {sms_handler.MAX_HISTORY_MESSAGES - 1}"


def test_base64_encoded_body_is_accepted(lambda_context: Any) -> None:
    assert (
        sms_handler.lambda_handler(webhook(base64_body=True), lambda_context)["statusCode"] == 200
    )


def test_long_reply_is_cut_to_twilio_limit(openai: Any, lambda_context: Any) -> None:
    openai.answer = (200, {"choices": [{"message": {"content": "x" * 5000}}]})

    body = sms_handler.lambda_handler(webhook(), lambda_context)["body"]

    assert "x" * sms_handler.MAX_REPLY_CHARACTERS + "</Message>" in body


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(webhook(token="some-other-token"), id="wrong-token"),
        pytest.param(webhook(url="https://evil.example.com/sms"), id="other-url"),
        pytest.param(webhook(signature="bm90IGEgc2lnbmF0dXJl"), id="garbage"),
        pytest.param(webhook(signature=""), id="empty"),
        pytest.param(
            {**webhook("Hi"), "body": webhook("Send me all your money")["body"]},
            id="tampered-body",
        ),
    ],
)
def test_bad_signature_is_403(
    event: dict[str, Any], openai: Any, conversations: Any, lambda_context: Any
) -> None:
    response = sms_handler.lambda_handler(event, lambda_context)

    assert response["statusCode"] == 403
    assert openai.requests == []
    assert conversations.scan()["Items"] == []


def test_missing_signature_header_is_403(openai: Any, lambda_context: Any) -> None:
    event = webhook()
    del event["headers"]["X-Twilio-Signature"]

    assert sms_handler.lambda_handler(event, lambda_context)["statusCode"] == 403
    assert openai.requests == []


def test_signed_message_without_body_is_400(openai: Any, lambda_context: Any) -> None:
    assert sms_handler.lambda_handler(webhook(body="  "), lambda_context)["statusCode"] == 400
    assert openai.requests == []


def assert_nothing_leaked(response: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    for secret in (OPENAI_KEY, TWILIO_TOKEN):
        assert secret not in response["body"]
        assert secret not in json.dumps(response["headers"])
        assert secret not in caplog.text


def test_openai_timeout_is_503_and_leaks_no_secret(
    openai: Any,
    conversations: Any,
    monkeypatch: pytest.MonkeyPatch,
    lambda_context: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    openai.routes["/v1/chat/completions"] = openai.stall()
    monkeypatch.setenv("HTTP_TIMEOUT_SECONDS", "0.2")
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")

    response = sms_handler.lambda_handler(webhook(), lambda_context)

    # The stalled route answers 200 only after 5 s: this verdict shows the
    # client's own timeout fired, whatever the machine's load (no clock here).
    assert response["statusCode"] == 503
    assert json.loads(response["body"]) == {
        "error": {"code": "upstream_timeout", "message": "the assistant did not answer in time"}
    }
    assert_nothing_leaked(response, caplog)
    assert conversations.scan()["Items"] == []


@pytest.mark.parametrize(
    "answer",
    [
        (401, {"error": {"message": f"Incorrect API key provided: {OPENAI_KEY}"}}),
        (500, {"error": {"message": "overloaded"}}),
        (200, "not json"),
        (200, {"choices": []}),
        (200, {"choices": [{"message": {"content": ""}}]}),
    ],
    ids=["unauthorized-echoing-key", "server-error", "not-json", "no-choices", "empty-reply"],
)
def test_openai_failure_is_502_and_leaks_no_secret(
    answer: Any,
    openai: Any,
    conversations: Any,
    monkeypatch: pytest.MonkeyPatch,
    lambda_context: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    openai.answer = answer
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")

    response = sms_handler.lambda_handler(webhook(), lambda_context)

    assert response["statusCode"] == 502
    assert_nothing_leaked(response, caplog)
    assert conversations.scan()["Items"] == []


def test_unreadable_secret_is_a_bare_500(
    openai: Any,
    monkeypatch: pytest.MonkeyPatch,
    lambda_context: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:deleted-AbCdEf"
    monkeypatch.setenv("OPENAI_API_KEY_SECRET_ARN", missing)

    response = sms_handler.lambda_handler(webhook(), lambda_context)

    assert response["statusCode"] == 500
    assert json.loads(response["body"])["error"] == {
        "code": "secret_unavailable",
        "message": "Internal server error",
    }
    assert "ResourceNotFoundException" in caplog.text
    assert openai.requests == []
