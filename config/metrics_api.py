"""``GET /metrics``: Prometheus exposition for allowed scrapers, with key gauges computed at scrape time.

Access: the peer address must be in ``METRICS_ALLOWED_IPS`` (default loopback) and the request must
come straight from the scraper (no ``X-Forwarded-For``/``Forwarded``: through a proxy on loopback
every client would look local); when ``METRICS_TOKEN`` is set it must also carry it as a bearer
token. A refused address gets 404 (the endpoint does not advertise itself), a missing or wrong
token 403.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.utils import timezone
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

from keys import engine
from keys.selectors import published_key_states
from keys.services import rotation_policy

logger = logging.getLogger(__name__)

_FORWARDING_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


def metrics(request: HttpRequest) -> HttpResponse:
    """The exposition text: this process's (or every worker's) metrics and the signing-key gauges."""
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    if not _address_allowed(request):
        return HttpResponse(status=404)
    if not _token_accepted(request):
        return HttpResponse(status=403)
    body = generate_latest(_process_registry()) + generate_latest(_key_registry())
    response = HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response


def _address_allowed(request: HttpRequest) -> bool:
    if any(request.META.get(header) for header in _FORWARDING_HEADERS):
        return False
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in settings.METRICS_ALLOWED_NETWORKS)


def _token_accepted(request: HttpRequest) -> bool:
    expected = settings.METRICS_TOKEN
    if not expected:
        return True
    scheme, _, presented = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode(), expected.encode())


def _process_registry() -> CollectorRegistry:
    """Every worker's values under gunicorn (multiprocess mode), else this process's registry."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return registry
    return REGISTRY


def _key_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(SigningKeyCollector())
    return registry


@dataclass(frozen=True)
class KeyGauges:
    """What the signing-key gauges say at one moment."""

    keys_by_phase: dict[str, int]
    active_age_seconds: float | None
    next_rotation_seconds: float | None


def key_gauges(*, keys: Iterable[engine.KeyState], policy: engine.RotationPolicy, now: datetime) -> KeyGauges:
    """The gauges from the published keys and the rotation policy (pure: no ORM, the clock passed in).

    The next rotation is the moment a successor starts signing: a pending key activates one publish
    lead after it was published; with none pending, the engine publishes one a lead before the
    interval ends, so the active key is replaced when its interval is over. Negative means overdue
    (beat is not running the rotation check).
    """
    keys = list(keys)
    counts = {phase: 0 for phase in engine.PUBLISHED_PHASES}
    for key in keys:
        if key.phase in counts:
            counts[key.phase] += 1
    active = next((key for key in keys if key.phase == engine.ACTIVE), None)
    age = None if active is None else (now - (active.activated_at or active.published_at)).total_seconds()
    next_at = engine.next_activation_at(keys=keys, policy=policy)
    next_rotation = None if next_at is None else (next_at - now).total_seconds()
    return KeyGauges(keys_by_phase=counts, active_age_seconds=age, next_rotation_seconds=next_rotation)


class SigningKeyCollector:
    """Reads the published keys at each scrape; a database outage drops these gauges, not the scrape."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            states = published_key_states()
        except DatabaseError:
            logger.warning("metrics: cannot read the signing keys", exc_info=True)
            return
        gauges = key_gauges(keys=states, policy=rotation_policy(), now=timezone.now())
        published = GaugeMetricFamily(
            "issuer_signing_keys", "Published signing keys by phase.", labels=["phase"]
        )
        for phase, count in gauges.keys_by_phase.items():
            published.add_metric([phase], count)
        yield published
        if gauges.active_age_seconds is not None:
            yield GaugeMetricFamily(
                "issuer_signing_key_active_age_seconds",
                "Seconds since the active signing key started signing.",
                value=gauges.active_age_seconds,
            )
        if gauges.next_rotation_seconds is not None:
            yield GaugeMetricFamily(
                "issuer_signing_key_next_rotation_seconds",
                "Seconds until a successor key starts signing (negative: overdue).",
                value=gauges.next_rotation_seconds,
            )
