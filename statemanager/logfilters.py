"""Log filters and the JSON formatter named in the settings' LOGGING."""

import json
import logging
from datetime import UTC, datetime

from core import logcontext
from expressions.secrets import mask, secrets_in_scope

# Formats a record's traceback before it is masked, as logging.Formatter would.
_TRACEBACKS = logging.Formatter()


class MaskSecrets(logging.Filter):
    """Every record with the secrets masked as the engine masks what it stores, in every
    form (percent-encoded, JSON-escaped, ...): its message with its arguments, its
    traceback and its stack. LOGGING puts it on every handler, so it holds in every
    process (web, qcluster and its workers, commands) and for records that loggers pass
    on to their parents' handlers.

    The record is changed in place, so the handlers after the first see it masked: the
    message is formatted once (the arguments dropped) and the traceback is kept as masked
    text, its exception left off the record so no handler formats it again from the
    frames (Django's AdminEmailHandler shows their local variables)."""

    def filter(self, record: logging.LogRecord) -> bool:
        secret_values = secrets_in_scope()
        if not secret_values:
            return True
        try:
            message = record.getMessage()
        except Exception:  # arguments that do not fit the message: both shown, masked
            message = f"{record.msg} {record.args!r}"
        record.msg, record.args = mask(message, secret_values), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text, secret_values)
        record.exc_info = None
        if record.stack_info:
            record.stack_info = mask(record.stack_info, secret_values)
        return True


class RefusedWithoutTraceback(logging.Filter):
    """Django logs a 403 (and a 400 it raised) with the exception's traceback, though a
    refused request is the client's doing, not a fault: keep the one line, drop the
    traceback. 5xx keep theirs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if 400 <= getattr(record, "status_code", 0) < 500:
            record.exc_info = None
            record.exc_text = None
        return True


class JsonLines(logging.Formatter):
    """`LOG_FORMAT=json`: each record one JSON object on one line, with the `order_id`,
    `step` and `attempt` the engine is working on where they apply (`core.logcontext`).

    It formats what `MaskSecrets` (a filter of the same handler, run first) left: the
    message already masked, the traceback as masked text."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update((k, v) for k, v in logcontext.fields().items() if v is not None)
        if hasattr(record, "status_code"):  # django.request and django.server
            line["status_code"] = record.status_code
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, ensure_ascii=False, default=str)
