"""Domain errors of authorization: the exchange's RFC 6749 §5.2 error, and the preview's.

An ``ExchangeError`` is rendered for clients by one exception handler; the portal shows a
``PreviewTargetUnknown`` as a form message. Anything else raised on the way is a bug, not an answer.
"""

from __future__ import annotations

import math

# RFC 6749 §5.2 and RFC 8693 §2.2.2 error codes used here.
INVALID_REQUEST = "invalid_request"
UNSUPPORTED_GRANT_TYPE = "unsupported_grant_type"
INVALID_TARGET = "invalid_target"
INVALID_SCOPE = "invalid_scope"
TEMPORARILY_UNAVAILABLE = "temporarily_unavailable"

# Seconds a client should wait after a 503: about what a database failover or restart takes.
UNAVAILABLE_RETRY_AFTER = 5


def retry_after_seconds(wait: float | None) -> int:
    """A throttle's wait as a Retry-After value: whole seconds, rounded up, at least one."""
    return max(1, math.ceil(wait or 1))


class ExchangeError(Exception):
    """A refused exchange.

    ``error`` and ``description`` go to the client (the description never echoes a token);
    ``reason`` is a stable code for the decision log that may say more, for operators.
    """

    def __init__(
        self,
        error: str,
        description: str,
        *,
        reason: str,
        status: int = 400,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.reason = reason
        self.status = status
        self.retry_after = retry_after
        self.logged = False  # set once the decision log has a record of it

    def as_body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


class PreviewTargetUnknown(Exception):
    """The previewed tenant or audience does not exist (deleted since the form offered it)."""

    def __init__(self) -> None:
        super().__init__("the tenant or the audience no longer exists")
