"""Prometheus metric definitions and the small recorders the apps call.

Label values are bounded: outcomes and reasons are stable codes written in our code, checked against a
pattern and capped, so a client can never mint a new time series. With ``PROMETHEUS_MULTIPROC_DIR``
set before start-up, prometheus-client keeps each worker's values in files there and ``/metrics``
adds them up (see ``config.metrics_api``; the signing-key gauges are ``keys.metrics``).
"""

from __future__ import annotations

import re
import threading
from typing import Any

from prometheus_client import Counter, Histogram

OTHER = "other"
OUTCOMES = frozenset({"issued", "refused"})
# Reason codes look like ``subject_token.expired``; anything else is folded into ``other``.
_REASON = re.compile(r"[a-z][a-z0-9_]{0,31}(\.[a-z][a-z0-9_]{0,31}){0,2}\Z")
MAX_REASONS = 100

EXCHANGES = Counter(
    "issuer_token_exchanges",
    "Token exchanges by outcome and reason code.",
    ["outcome", "reason"],
)
EXCHANGE_LATENCY = Histogram(
    "issuer_token_exchange_duration_seconds",
    "Time spent in the exchange use case, from parsed request to signed token or refusal.",
    ["outcome"],
    buckets=(0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
ENTRA_JWKS_FETCHES = Counter(
    "issuer_entra_jwks_fetches",
    "Fetches of an Entra directory's discovery document and JWKS, by result.",
    ["result"],
)

_seen_reasons: set[str] = set()
_seen_lock = threading.Lock()


def reason_label(reason: str) -> str:
    """``reason`` when it is a well-formed code and among the first ``MAX_REASONS`` seen, else other."""
    if isinstance(reason, str) and reason in _seen_reasons:
        return reason
    if not isinstance(reason, str) or not _REASON.match(reason):
        return OTHER
    with _seen_lock:
        if len(_seen_reasons) >= MAX_REASONS:
            return OTHER
        _seen_reasons.add(reason)
    return reason


# The labelled children, kept: ``labels()`` checks names and takes a lock on every call. The
# reasons are bounded (above), so these are too.
_exchange_counters: dict[tuple[str, str], Any] = {}
_exchange_latencies: dict[str, Any] = {}


def exchange_record(*, outcome: str, reason: str, seconds: float | None) -> None:
    """Count one exchange decision; its latency when the use case measured one."""
    outcome = outcome if outcome in OUTCOMES else OTHER
    key = (outcome, reason_label(reason))
    counter = _exchange_counters.get(key)
    if counter is None:
        counter = _exchange_counters.setdefault(key, EXCHANGES.labels(*key))
    counter.inc()
    if seconds is not None:
        latency = _exchange_latencies.get(outcome)
        if latency is None:
            latency = _exchange_latencies.setdefault(outcome, EXCHANGE_LATENCY.labels(outcome))
        latency.observe(seconds)


def jwks_fetch_record(*, ok: bool) -> None:
    """Count one refresh of an Entra directory's keys (discovery and JWKS together)."""
    ENTRA_JWKS_FETCHES.labels(result="ok" if ok else "failed").inc()
