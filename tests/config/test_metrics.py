"""/metrics: counters move with exchanges and Entra fetches, key gauges at scrape time, access refused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from accounts.provider_keys import JwksCache, JwksUnavailable
from keys.services import rotation_policy, signing_key_rotate
from lib import metrics
from tests.fake_entra import DOWN, TENANT_ID
from tests.support.settings import PRODUCTION

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "a-metrics-bearer-token-of-at-least-32-chars"


def exchanges(outcome: str, reason: str) -> float:
    value = REGISTRY.get_sample_value("issuer_token_exchanges_total", {"outcome": outcome, "reason": reason})
    return value or 0.0


def latency_count(outcome: str) -> float:
    value = REGISTRY.get_sample_value("issuer_token_exchange_duration_seconds_count", {"outcome": outcome})
    return value or 0.0


def jwks_fetches(result: str) -> float:
    return REGISTRY.get_sample_value("issuer_entra_jwks_fetches_total", {"result": result}) or 0.0


def scrape(client, **extra) -> dict[str, list]:
    response = client.get("/metrics", **extra)
    assert response.status_code == 200, response.status_code
    assert response["Content-Type"].startswith("text/plain")
    families = text_string_to_metric_families(response.content.decode())
    return {family.name: family.samples for family in families}


# --- counters ------------------------------------------------------------------------------------
def test_an_issued_token_counts_as_issued_ok_with_its_latency(exchange, orders_policy):
    orders_policy.grant(orders_policy.viewer, orders_policy.acme)
    issued, observed = exchanges("issued", "ok"), latency_count("issued")

    assert exchange().status_code == 200

    assert exchanges("issued", "ok") == issued + 1
    assert latency_count("issued") == observed + 1


def test_a_refusal_counts_under_its_reason_code(exchange, fake_entra, orders_policy):
    expired = exchanges("refused", "subject_token.expired")
    unknown_audience = exchanges("refused", "audience.unknown")
    orders_policy.grant(orders_policy.viewer, orders_policy.acme)

    assert exchange(fake_entra.mint(exp=1_000)).status_code == 400
    assert exchange(audience="api://nowhere").status_code == 400

    assert exchanges("refused", "subject_token.expired") == expired + 1
    assert exchanges("refused", "audience.unknown") == unknown_audience + 1


def test_a_malformed_body_counts_without_a_latency(client, exchange):
    malformed, observed = exchanges("refused", "request.malformed"), latency_count("refused")

    response = client.post("/oauth2/token", "{not json", content_type="application/json")

    assert response.status_code == 400
    assert exchanges("refused", "request.malformed") == malformed + 1
    assert latency_count("refused") == observed


def test_the_scrape_shows_the_exchange_counters(client, exchange, orders_policy):
    orders_policy.grant(orders_policy.viewer, orders_policy.acme)
    exchange()

    samples = scrape(client)["issuer_token_exchanges"]

    assert any(s.labels == {"outcome": "issued", "reason": "ok"} and s.value >= 1 for s in samples)


@pytest.mark.parametrize(
    "reason",
    ["Bearer eyJhbGciOi", "subject_token.<script>", "a" * 40, "UPPER.case", "x.y.z.w", "", "kid/../etc"],
)
def test_a_reason_that_is_not_a_code_is_folded_into_other(reason):
    assert metrics.reason_label(reason) == "other"


def test_reason_labels_are_capped_so_the_series_stay_bounded(monkeypatch):
    monkeypatch.setattr(metrics, "_seen_reasons", {f"seen.r{n}" for n in range(metrics.MAX_REASONS)})

    assert metrics.reason_label("seen.r1") == "seen.r1"
    assert metrics.reason_label("never.seen") == "other"


def test_an_unknown_outcome_is_counted_as_other():
    before = exchanges("other", "ok")
    metrics.exchange_record(outcome="maybe", reason="ok", seconds=None)
    assert exchanges("other", "ok") == before + 1


def test_entra_key_fetches_count_successes_and_failures(fake_entra):
    ok, failed = jwks_fetches("ok"), jwks_fetches("failed")
    cache = JwksCache(refresh_in_background=False, timeout=1.0)

    kid = fake_entra.directory(TENANT_ID).signing[0]

    assert cache.key_get(authority=fake_entra.authority, tid=TENANT_ID, kid=kid) is not None
    assert jwks_fetches("ok") == ok + 1
    fake_entra.mode = DOWN
    with pytest.raises(JwksUnavailable, match="HTTP 503"):  # a fresh cache: nothing cached
        JwksCache(timeout=1.0).key_get(authority=fake_entra.authority, tid=TENANT_ID, kid="nope")
    assert jwks_fetches("failed") == failed + 1


# --- key gauges ----------------------------------------------------------------------------------
def test_the_scrape_shows_the_active_key_age_and_the_next_rotation(client, signing_key, settings):
    samples = scrape(client)

    [age] = samples["issuer_signing_key_active_age_seconds"]
    [next_rotation] = samples["issuer_signing_key_next_rotation_seconds"]
    assert 0 <= age.value < 60
    assert settings.KEY_ROTATION_INTERVAL - 60 < next_rotation.value <= settings.KEY_ROTATION_INTERVAL
    phases = {s.labels["phase"]: s.value for s in samples["issuer_signing_keys"]}
    assert phases == {"pending": 0, "active": 1, "retiring": 0}


def test_with_a_successor_published_the_next_rotation_is_its_activation(client, signing_key):
    signing_key_rotate(force=True)

    samples = scrape(client)

    [next_rotation] = samples["issuer_signing_key_next_rotation_seconds"]
    lead = rotation_policy().publish_lead.total_seconds()
    assert lead - 60 < next_rotation.value <= lead
    assert {s.labels["phase"]: s.value for s in samples["issuer_signing_keys"]}["pending"] == 1


def test_without_keys_the_scrape_says_none_is_active(client, db):
    samples = scrape(client)

    assert "issuer_signing_key_active_age_seconds" not in samples
    assert {s.labels["phase"]: s.value for s in samples["issuer_signing_keys"]}["active"] == 0


# --- access --------------------------------------------------------------------------------------
@pytest.mark.parametrize("address", ["10.0.0.5", "192.168.1.1", "2001:db8::1", "not-an-address"])
def test_an_address_outside_the_allowed_list_gets_a_404(client, db, address):
    assert client.get("/metrics", REMOTE_ADDR=address).status_code == 404


@pytest.mark.parametrize("header", ["HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP"])
def test_a_request_through_a_proxy_gets_a_404_even_from_loopback(client, db, header):
    assert client.get("/metrics", **{header: "127.0.0.1"}).status_code == 404


def test_an_allowed_network_may_scrape(client, db, settings):
    settings.METRICS_ALLOWED_NETWORKS = [__import__("ipaddress").ip_network("10.0.0.0/8")]

    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 404


def test_with_a_token_configured_a_scrape_without_it_or_with_another_gets_a_403(client, db, settings):
    settings.METRICS_TOKEN = TOKEN

    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN[:-1]}x").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200


def test_the_token_does_not_open_the_endpoint_to_other_addresses(client, db, settings):
    settings.METRICS_TOKEN = TOKEN

    response = client.get("/metrics", REMOTE_ADDR="10.0.0.5", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert response.status_code == 404


def test_only_get_is_allowed(client, db):
    assert client.post("/metrics").status_code == 405


# --- settings ------------------------------------------------------------------------------------
def load_settings(**overrides: str) -> subprocess.CompletedProcess:
    environment = {"PATH": os.environ["PATH"], "VAR_DIR": os.environ["VAR_DIR"], **PRODUCTION, **overrides}
    code = "import config.settings as s; print(s.METRICS_ALLOWED_NETWORKS, bool(s.METRICS_TOKEN))"
    return subprocess.run(  # noqa: S603 - our interpreter running our own code
        [sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )


def test_the_default_allows_loopback_only():
    result = load_settings()
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[IPv4Network('127.0.0.1/32'), IPv6Network('::1/128')] False"


@pytest.mark.parametrize(
    "overrides",
    [{"METRICS_ALLOWED_IPS": "10.0.0.0/8,nonsense"}, {"METRICS_TOKEN": "short"}],
)
def test_bad_metrics_settings_stop_start_up(overrides):
    result = load_settings(**overrides)
    assert result.returncode != 0
    assert next(iter(overrides)) + ":" in result.stderr


# --- several workers -----------------------------------------------------------------------------
WORKER = """
from lib import metrics
metrics.exchange_record(outcome="issued", reason="ok", seconds=0.002)
"""

SCRAPER = """
import django
django.setup()
from django.test import Client
response = Client(HTTP_HOST="127.0.0.1").get("/metrics")
assert response.status_code == 200, response.status_code
print(response.content.decode())
"""


def test_in_multiprocess_mode_the_scrape_adds_up_every_worker(tmp_path):
    environment = {
        "PATH": os.environ["PATH"],
        "VAR_DIR": str(tmp_path),
        "DEBUG": "true",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
    }

    def run(code: str) -> str:
        command = [sys.executable, "-c", code]
        result = subprocess.run(  # noqa: S603 - our interpreter running our own code
            command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    run(WORKER)
    run(WORKER)
    text = run(SCRAPER)

    families = {family.name: family for family in text_string_to_metric_families(text)}
    [issued] = [s for s in families["issuer_token_exchanges"].samples if s.labels.get("reason") == "ok"]
    assert issued.value == 2
    latency = families["issuer_token_exchange_duration_seconds"].samples
    assert sum(s.value for s in latency if s.name.endswith("_count")) == 2
