"""Log filters named in the settings' LOGGING."""

import logging

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
