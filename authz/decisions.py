"""The decision log: one structured JSON record per exchange, never a token, never a key."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from lib import metrics

logger = logging.getLogger("authz.decisions")


@dataclass
class DecisionRecord:
    outcome: str = "refused"
    reason: str = "unknown"
    principal: str | None = None
    provider: str | None = None  # the identity provider's name (for an ENTRA_* directory, its tid)
    tid: str | None = None  # the Entra directory, for Entra kinds
    client_id: str | None = None
    tenant: str | None = None
    audience: str | None = None
    scope: str | None = None
    roles: list[str] = field(default_factory=list)
    jti: str | None = None
    latency_ms: float = 0.0
    excluded: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def issue(self, *, jti: str, scope: str, roles: tuple[str, ...]) -> None:
        self.outcome, self.reason, self.jti, self.scope, self.roles = "issued", "ok", jti, scope, list(roles)

    def refuse(self, reason: str) -> None:
        self.outcome, self.reason = "refused", reason


def log(record: DecisionRecord) -> None:
    """Count the decision in the metrics and write its JSON record (nested as an object in JSON logs)."""
    # Refusals rendered before the use case ran (a malformed body, a throttled address) have no latency.
    seconds = record.latency_ms / 1000 if record.latency_ms > 0 else None
    metrics.exchange_record(outcome=record.outcome, reason=record.reason, seconds=seconds)
    if not logger.isEnabledFor(logging.INFO):
        return
    data = {"event": "token_exchange", **vars(record)}  # flat fields: no deep copy needed
    data["latency_ms"] = round(record.latency_ms, 3)
    level = logging.INFO if record.outcome == "issued" else logging.WARNING
    # The JSON formatter writes ``structured``; the text is built only if a plain formatter asks.
    logger.log(level, "%s", _JsonText(data), extra={"structured": data})


class _JsonText:
    """A dict that becomes compact JSON text only when a handler formats it."""

    __slots__ = ("data",)

    def __init__(self, data: dict) -> None:
        self.data = data

    def __str__(self) -> str:
        return json.dumps(self.data, separators=(",", ":"))
