"""Sign latency per algorithm: ``token_sign`` with the active key cached (the exchange's hot path).

For ES256, RS256 and PS256 in turn, makes a key of that algorithm active (a throwaway SQLite
database in a temporary directory; the signing path itself makes no query with the cache warm),
signs a realistic claims set BENCH_SIGNS times (default 3000) and prints median and p99 per sign
as a Markdown table. RSA keys are 3072 bits (``keys.stores.RSA_KEY_SIZE``).

    .venv/bin/python bench/sign.py
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
_var = tempfile.mkdtemp(prefix="bench-sign-")
os.environ.update(
    {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "true",
        "VAR_DIR": _var,
        "DATABASE_URL": f"sqlite:///{_var}/db.sqlite3",
        "LOG_LEVEL": "WARNING",
    }
)
os.environ.pop("ENV_FILE", None)

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

from keys import engine  # noqa: E402
from keys.models import SigningKey  # noqa: E402
from keys.services import active_signer_cache, signing_key_revoke, signing_key_rotate, token_sign  # noqa: E402
from lib.jwa import SIGNING_ALGORITHMS  # noqa: E402

SIGNS = int(os.environ.get("BENCH_SIGNS", "3000"))


def claims() -> dict:
    now = int(time.time())
    return {
        "iss": "https://issuer.example.com",
        "sub": str(uuid.uuid4()),
        "aud": "api://orders",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
        "client_id": str(uuid.uuid4()),
        "tenant": "acme",
        "roles": ["viewer", "exporter"],
        "scope": "orders.read orders.export invoices.read",
    }


def activate(algorithm: str) -> None:
    settings.KEY_ALGORITHM = algorithm
    current = SigningKey.objects.filter(phase=engine.ACTIVE).first()
    if current is None:
        signing_key_rotate()
    elif current.algorithm != algorithm:
        signing_key_revoke(kid=current.kid)  # the emergency path activates a fresh key at once


def measure(algorithm: str) -> tuple[float, float, int]:
    activate(algorithm)
    active_signer_cache.clear()
    payload = claims()
    token = token_sign(claims=payload)  # warms the cache: decrypts the key once
    samples = []
    for _ in range(SIGNS):
        started = time.perf_counter_ns()
        token_sign(claims=payload)
        samples.append(time.perf_counter_ns() - started)
    samples.sort()
    return statistics.median(samples) / 1e6, samples[int(len(samples) * 0.99) - 1] / 1e6, len(token)


def main() -> None:
    call_command("migrate", verbosity=0)
    print(f"{SIGNS} signs per algorithm, cache warm, one thread\n")
    print("| algorithm | key | median | p99 | signs/s (1 core, median) | token bytes |")
    print("|---|---|---:|---:|---:|---:|")
    for algorithm in SIGNING_ALGORITHMS:
        median, p99, size = measure(algorithm)
        key = "P-256" if algorithm == "ES256" else "RSA 3072"
        print(f"| {algorithm} | {key} | {median:.3f} ms | {p99:.3f} ms | {1000 / median:,.0f} | {size} |")


if __name__ == "__main__":
    main()
