"""``GET /metrics``: Prometheus exposition for allowed scrapers, with the key gauges of ``keys.metrics``.

Access: the peer address must be in ``METRICS_ALLOWED_IPS`` (default loopback) and the request must
come straight from the scraper (no ``X-Forwarded-For``/``Forwarded``: through a proxy on loopback
every client would look local); when ``METRICS_TOKEN`` is set it must also carry it as a bearer
token. A refused address gets 404 (the endpoint does not advertise itself), a missing or wrong
token 403.
"""

from __future__ import annotations

import hmac
import ipaddress
import os

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

from keys.metrics import SigningKeyCollector

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
