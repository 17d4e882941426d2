"""Log filters named in the settings' LOGGING."""

import logging


class RefusedWithoutTraceback(logging.Filter):
    """Django logs a 403 (and a 400 it raised) with the exception's traceback, though a
    refused request is the client's doing, not a fault: keep the one line, drop the
    traceback. 5xx keep theirs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if 400 <= getattr(record, "status_code", 0) < 500:
            record.exc_info = None
            record.exc_text = None
        return True
