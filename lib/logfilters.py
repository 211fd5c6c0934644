"""Logging filters that the ``LOGGING`` setting attaches to loggers whose records need reshaping."""

from __future__ import annotations

import logging


class WarningWithoutTraceback(logging.Filter):
    """Passes each record on as one line at WARNING: no traceback, no stack.

    For refusals of a client's input that Django logs as errors: a request with a bad ``Host`` header
    is logged at ERROR with the traceback of the ``DisallowedHost`` behind its 400. Nothing failed on
    our side and anyone can send such requests, so an error and a traceback for each would let any
    client flood the logs (and page whoever watches the errors).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.WARNING:
            record.levelno = logging.WARNING
            record.levelname = logging.getLevelName(logging.WARNING)
        record.exc_info = None
        record.exc_text = None
        record.stack_info = None
        return True
