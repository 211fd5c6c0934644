"""Sign latency and signing throughput per key store: local, local wrapped by the vault, and Key Vault.

The vault is the test suite's fake Key Vault (tests/fake_keyvault.py) on loopback HTTPS, driven by the
real azure-keyvault-keys SDK with a managed-identity token from the fake's loopback endpoint, so the
figures are this service's and the SDK's own cost plus a TLS round trip on loopback: against Azure,
add the network round trip to the vault (published: tens of ms warm, over a second after a reconnect)
and its throttling limits (README, "Capacity per vault tier").

For each store it makes an ES256 key active (a throwaway SQLite database), warms the signer cache,
then measures ``token_sign`` one call at a time (median, p99) and with BENCH_THREADS callers at once
for BENCH_SECONDS (signs/s: the ceiling the store puts on the exchange in one process), and whole
exchanges (POST /oauth2/token through Django's test client, in process: middleware, DRF, the Entra
token checked against the test suite's fake Entra, the policy query on SQLite, signing) with the
same number of callers. Everything shares one Python process and the machine's cores, the fakes too.

    .venv/bin/python bench/key_stores.py
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
_var = Path(tempfile.mkdtemp(prefix="bench-key-stores-"))

from tests import fake_entra as entra  # noqa: E402
from tests.fake_keyvault import FakeKeyVault  # noqa: E402

FAKE = FakeKeyVault(_var)
ENTRA = entra.FakeEntra().start()
os.environ.update(
    {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "true",
        "VAR_DIR": str(_var),
        "DATABASE_URL": f"sqlite:///{_var}/db.sqlite3",
        "LOG_LEVEL": "WARNING",
        "REQUESTS_CA_BUNDLE": str(FAKE.cert_path),
        "IDENTITY_ENDPOINT": FAKE.identity_endpoint,
        "IDENTITY_HEADER": FAKE.identity_header,
    }
)
for _name in ("ENV_FILE", "AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET"):
    os.environ.pop(_name, None)

import django  # noqa: E402

django.setup()

from azure.keyvault.keys import KeyClient, KeyOperation  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

from keys import engine, stores, vault  # noqa: E402
from keys.models import SigningKey  # noqa: E402
from keys.services import active_signer_cache, signing_key_revoke, signing_key_rotate, token_sign  # noqa: E402

SIGNS = int(os.environ.get("BENCH_SIGNS", "1000"))
THREADS = int(os.environ.get("BENCH_THREADS", "8"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))


def claims() -> dict:
    now = int(time.time())
    return {
        "iss": "https://issuer.example.com",
        "sub": str(uuid.uuid4()),
        "aud": "api://orders",
        "iat": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
        "scope": "orders.read orders.export",
    }


def use(store: str) -> None:
    settings.KEY_ALGORITHM = "ES256"
    settings.KEY_VAULT_URL = FAKE.url.rstrip("/")
    settings.KEY_VAULT_VERIFY_CHALLENGE_RESOURCE = False
    settings.KEY_STORE = "azure-keyvault" if store == "azure-keyvault" else "local"
    settings.KEY_VAULT_WRAP_KEY = "token-wrap" if store == "local, vault-wrapped" else None
    stores._stores.clear()
    current = SigningKey.objects.filter(phase=engine.ACTIVE).first()
    if current is None:
        signing_key_rotate()
    else:
        signing_key_revoke(kid=current.kid)  # a fresh key in the store under test, active at once
    active_signer_cache.clear()


def latency() -> tuple[float, float]:
    payload = claims()
    token_sign(claims=payload)  # warm: key opened (unwrapped) once, challenge and token fetched
    samples = []
    for _ in range(SIGNS):
        started = time.perf_counter_ns()
        token_sign(claims=payload)
        samples.append(time.perf_counter_ns() - started)
    samples.sort()
    return statistics.median(samples) / 1e6, samples[int(len(samples) * 0.99) - 1] / 1e6


def throughput() -> tuple[float, int]:
    payload = claims()
    done = [0] * THREADS
    failed = [0] * THREADS
    deadline = time.monotonic() + SECONDS

    def run(index: int) -> None:
        while time.monotonic() < deadline:
            try:
                token_sign(claims=payload)
                done[index] += 1
            except Exception:
                failed[index] += 1

    workers = [threading.Thread(target=run, args=(index,)) for index in range(THREADS)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(done) / SECONDS, sum(failed)


def exchange_setup() -> str:
    """The orders policy with one grant for the fake Entra's user; returns a subject token."""
    from authz.models import Audience, Grant, Permission, Role, Tenant
    from authz.throttling import AddressRateThrottle, PrincipalRateThrottle

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    settings.ENTRA_AUTHORITY = ENTRA.authority
    settings.ENTRA_TENANT_ID = [entra.TENANT_ID]
    settings.ENTRA_AUDIENCE = [entra.AUDIENCE, entra.AUDIENCE_ID]
    settings.ENTRA_REQUIRED_SCOPES = [entra.SCOPE]
    settings.ENTRA_REQUIRED_ROLES = [entra.ROLE]
    AddressRateThrottle.THROTTLE_RATES = {"exchange_address": "10000000/minute"}
    PrincipalRateThrottle.THROTTLE_RATES = {"exchange_principal": "10000000/minute"}
    read = Permission.objects.create(code="orders.read")
    Audience.objects.create(identifier="api://orders", name="Orders API").permissions.set([read])
    viewer = Role.objects.create(slug="viewer", name="Viewer")
    viewer.permissions.set([read])
    acme = Tenant.objects.create(slug="acme", name="Acme")
    Grant.objects.create(
        tenant=acme, role=viewer, subject_type="user", provider=entra.TENANT_ID, subject_id=entra.OID
    )
    return ENTRA.mint()


def exchanges(subject_token: str) -> tuple[float, Counter[int]]:
    from django.test import Client

    from authz.rfc8693 import ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE

    form = urlencode(
        {
            "grant_type": TOKEN_EXCHANGE,
            "subject_token": subject_token,
            "subject_token_type": ACCESS_TOKEN_TYPE,
            "audience": "api://orders",
        }
    )
    form_type = "application/x-www-form-urlencoded"
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    warm = Client().post("/oauth2/token", form, content_type=form_type)  # warm: Entra's keys fetched
    assert warm.status_code == 200, warm.content
    deadline = time.monotonic() + SECONDS

    def run() -> None:
        client = Client()
        seen: Counter[int] = Counter()
        while time.monotonic() < deadline:
            seen[client.post("/oauth2/token", form, content_type=form_type).status_code] += 1
        with lock:
            statuses.update(seen)

    workers = [threading.Thread(target=run) for _ in range(THREADS)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return statuses[200] / SECONDS, statuses


def main() -> None:
    call_command("migrate", verbosity=0)
    subject_token = exchange_setup()
    KeyClient(FAKE.url, vault._credential(), verify_challenge_resource=False).create_rsa_key(
        "token-wrap", size=3072, key_operations=[KeyOperation.wrap_key, KeyOperation.unwrap_key]
    )
    print(
        f"ES256; {SIGNS} signs one at a time, then {THREADS} threads for {SECONDS:.0f} s;"
        " fake vault on loopback\n"
    )
    print(
        f"| store | median | p99 | signs/s, 1 thread | signs/s, {THREADS} threads | failed |"
        f" vault calls per sign | exchanges/s, {THREADS} threads | non-200 |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for store in ("local", "local, vault-wrapped", "azure-keyvault"):
        use(store)
        vault.guard.reset()
        before = FAKE.calls["sign"]
        median, p99 = latency()
        rate, failed = throughput()
        signs = SIGNS + 1 + round(rate * SECONDS) + failed
        per_sign = (FAKE.calls["sign"] - before) / signs
        exchange_rate, statuses = exchanges(subject_token)
        refused = sum(count for status, count in statuses.items() if status != 200)
        print(
            f"| {store} | {median:.3f} ms | {p99:.3f} ms | {1000 / median:,.0f} | {rate:,.0f} | {failed} |"
            f" {per_sign:.2f} | {exchange_rate:,.0f} | {refused} |"
        )
    FAKE.close()
    ENTRA.close()


if __name__ == "__main__":
    main()
