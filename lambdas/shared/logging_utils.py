"""Structured JSON logging for the handlers.

One JSON object per line makes CloudWatch Logs Insights queries possible
(``filter level = "ERROR" | stats count() by logger``). Extra fields passed
as ``logger.info("…", extra={"user_id": …})`` become keys of the object, and
every line carries the Lambda request id of the invocation that wrote it.

The libraries that can log whole HTTP requests and responses at DEBUG level
(botocore would print Secrets Manager's answer, secret included) are kept at
INFO or above whatever ``LOG_LEVEL`` says.
"""

from __future__ import annotations

import json
import logging
import os
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

# Loggers that print request/response bodies or headers at DEBUG level.
_CHATTY_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer")

# Attributes every LogRecord has: everything else on a record came from `extra`.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
}

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object, extra fields included."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = _request_id.get()
        if request_id:
            entry["request_id"] = request_id
        entry.update(
            (key, value) for key, value in vars(record).items() if key not in _RECORD_ATTRIBUTES
        )
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging() -> None:
    """Install the JSON formatter on the root logger's handlers (idempotent).

    On Lambda the runtime has already attached a handler to the root logger;
    elsewhere a stderr handler is added.
    """
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    for handler in root.handlers:
        if not isinstance(handler.formatter, JsonFormatter):
            handler.setFormatter(JsonFormatter())
    level = logging.getLevelName(os.environ.get("LOG_LEVEL", "INFO").upper())
    root.setLevel(level if isinstance(level, int) else logging.INFO)
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)


def bind_lambda_context(context: Any) -> None:
    """Configure logging and tag the following log lines with the invocation's request id."""
    configure_logging()
    _request_id.set(getattr(context, "aws_request_id", None))
