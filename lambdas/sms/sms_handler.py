"""Twilio inbound SMS webhook: a chat assistant over text messages.

For each message Twilio POSTs (form-encoded) to this function, it

1. checks ``X-Twilio-Signature`` with Twilio's ``RequestValidator`` and the
   account's auth token, so only Twilio can make it spend OpenAI credit (403
   otherwise);
2. loads the conversation with the sender's number from DynamoDB (the last
   ``MAX_HISTORY_MESSAGES`` messages; items expire after ``CONVERSATION_TTL_SECONDS``
   through the table's TTL on ``expires_at``);
3. asks the OpenAI chat completions API for a reply over plain HTTPS with
   ``requests`` (the OpenAI SDK would add megabytes to the layers for one call);
4. stores the exchange and answers with TwiML, which makes Twilio send the reply.

An OpenAI failure is a 502, a timeout a 503 (keep HTTP_TIMEOUT_SECONDS under
Twilio's 15-second webhook timeout and the function's own timeout); neither
response nor log says more than which service failed.

Environment:
    TWILIO_WEBHOOK_URL            required. The webhook URL exactly as configured in
                                  Twilio (query string included): Twilio signs it.
    TWILIO_AUTH_TOKEN_SECRET_ARN  required. Secrets Manager secret holding the Twilio
                                  auth token (plain string).
    OPENAI_API_KEY_SECRET_ARN     required. Secrets Manager secret holding the OpenAI
                                  API key (plain string).
    CONVERSATIONS_TABLE           required. DynamoDB table (partition key
                                  ``phone_number``, string; TTL attribute ``expires_at``).
    OPENAI_API_URL                optional. Default https://api.openai.com/v1/chat/completions.
    OPENAI_MODEL                  optional. Default gpt-4o-mini.
    HTTP_TIMEOUT_SECONDS          optional. Timeout of the OpenAI call, default 10.
    LOG_LEVEL                     optional. Default INFO.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import parse_qsl

import requests
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from shared import db_utils
from shared.config import env_seconds, optional_env, require_env
from shared.errors import BadRequestError, ForbiddenError, UpstreamError, UpstreamTimeoutError
from shared.request import body_text, get_header
from shared.response import Event, Response, api_handler, build_response
from shared.secrets_cache import get_secret

logger = logging.getLogger(__name__)

DEFAULT_OPENAI_API_URL = "https://api.openai.com/v1/chat/completions"
DEFAULT_OPENAI_MODEL = "gpt-4o-mini"
DEFAULT_TIMEOUT_SECONDS = 10.0
SYSTEM_PROMPT = (
    "You are a helpful assistant answering by SMS. Reply in plain text, "
    "briefly: a few sentences at most."
)
MAX_HISTORY_MESSAGES = 20
CONVERSATION_TTL_SECONDS = 30 * 24 * 3600
# Twilio refuses message bodies longer than 1600 characters.
MAX_REPLY_CHARACTERS = 1600


def _verified_params(event: Event) -> dict[str, str]:
    """The webhook's form parameters, once the signature proves they come from Twilio."""
    signature = get_header(event, "X-Twilio-Signature")
    if not signature:
        raise ForbiddenError("missing Twilio signature")
    params = dict(parse_qsl(body_text(event), keep_blank_values=True))
    validator = RequestValidator(get_secret(require_env("TWILIO_AUTH_TOKEN_SECRET_ARN")))
    if not validator.validate(require_env("TWILIO_WEBHOOK_URL"), params, signature):
        raise ForbiddenError("invalid Twilio signature")
    return params


def _load_history(table: Any, phone_number: str) -> list[dict[str, str]]:
    item = table.get_item(Key={"phone_number": phone_number}).get("Item") or {}
    return item.get("messages", [])


def _save_history(table: Any, phone_number: str, messages: list[dict[str, str]]) -> None:
    table.put_item(
        Item={
            "phone_number": phone_number,
            "messages": messages[-MAX_HISTORY_MESSAGES:],
            "updated_at": db_utils.utc_now(),
            "expires_at": int(time.time()) + CONVERSATION_TTL_SECONDS,
        }
    )


def _ask_openai(messages: list[dict[str, str]]) -> str:
    api_key = get_secret(require_env("OPENAI_API_KEY_SECRET_ARN"))
    payload: dict[str, Any] = {
        "model": optional_env("OPENAI_MODEL", DEFAULT_OPENAI_MODEL),
        "messages": [{"role": "system", "content": SYSTEM_PROMPT}, *messages],
    }
    try:
        response = requests.post(
            optional_env("OPENAI_API_URL", DEFAULT_OPENAI_API_URL),
            json=payload,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=env_seconds("HTTP_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS),
        )
    except requests.Timeout:
        raise UpstreamTimeoutError("the assistant did not answer in time") from None
    except requests.RequestException as error:
        logger.error("OpenAI unreachable", extra={"error": type(error).__name__})
        raise UpstreamError("the assistant is unreachable") from None
    if not response.ok:
        # The error body is not logged: OpenAI's can quote the API key.
        logger.error("OpenAI refused the request", extra={"status": response.status_code})
        raise UpstreamError("the assistant failed")
    try:
        reply = response.json()["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        reply = None
    if not isinstance(reply, str) or not reply.strip():
        logger.error("unexpected OpenAI answer", extra={"status": response.status_code})
        raise UpstreamError("the assistant answered unexpectedly")
    return reply.strip()[:MAX_REPLY_CHARACTERS]


@api_handler
def lambda_handler(event: Event, context: Any) -> Response:
    params = _verified_params(event)
    sender, text = params.get("From", "").strip(), params.get("Body", "").strip()
    if not sender or not text:
        raise BadRequestError("From and Body are required")
    table = db_utils.table(require_env("CONVERSATIONS_TABLE"))
    messages = [*_load_history(table, sender), {"role": "user", "content": text}]
    reply = _ask_openai(messages)
    _save_history(table, sender, [*messages, {"role": "assistant", "content": reply}])
    logger.info("replied", extra={"message_sid": params.get("MessageSid")})
    twiml = MessagingResponse()
    twiml.message(reply)
    return build_response(200, str(twiml), headers={"Content-Type": "application/xml"})
