"""Structured logs: every record as one JSON line, a structured message nested as an object."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

# Built once: json.dumps with arguments builds a new encoder on every call, twice per exchange.
_ENCODER = json.JSONEncoder(default=str, separators=(",", ":"))


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message and the exception if any.

    A record that carries ``structured`` (a dict, passed as ``extra={"structured": …}``) puts it in
    ``message`` as an object, so the decision log reads as data rather than an escaped string. Other
    extras (Django's ``request``, for one) are left out: they are objects, not log data.
    """

    def format(self, record: logging.LogRecord) -> str:
        structured = getattr(record, "structured", None)
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": structured if isinstance(structured, dict) else record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return _ENCODER.encode(line)
