"""Downstream verification with the kit (issuer_verify): verifications per second on one core per
algorithm, and what the JWKS cache costs on a hit, on a revalidation and cold.

A fake issuer on loopback (tests/support/fake_issuer.py: RFC 8414 metadata, a JWKS with ETag and
max-age) holds one key per algorithm, RSA at the issuer's 3072 bits, and mints tokens with the
issuer's claims (three roles, three scopes). The process is pinned to one CPU. For reference, the
same tokens are also verified by PyJWT (production dependency of the issuer) and joserfc (the test
suite's independent verifier), each with the key already in hand: no JWKS, no cache.

    .venv/bin/python bench/verify.py        # BENCH_VERIFIES=5000 per row by default
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import jwt as pyjwt  # noqa: E402
from joserfc import jwt as joserfc_jwt  # noqa: E402
from joserfc.jwk import KeySet  # noqa: E402

from issuer_verify import JwksCache, TokenVerifier  # noqa: E402
from issuer_verify.jose import b64decode  # noqa: E402
from tests.support.fake_issuer import AUDIENCE, FakeIssuer, IssuerKey  # noqa: E402

VERIFIES = int(os.environ.get("BENCH_VERIFIES", "5000"))
ALGORITHMS = ("ES256", "RS256", "PS256")


class ManualClock:
    def __init__(self) -> None:
        self.now = time.monotonic()

    def __call__(self) -> float:
        return self.now


def timed(operation: Callable[[], object], count: int) -> list[float]:
    """Seconds per call, ``count`` calls, after a short warm-up."""
    for _ in range(min(200, count)):
        operation()
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        operation()
        samples.append(time.perf_counter() - started)
    return samples


async def timed_async(verifier: TokenVerifier, token: str) -> list[float]:
    """``timed`` for ``verify_async``, every call awaited inside one running event loop."""
    for _ in range(min(200, VERIFIES)):
        await verifier.verify_async(token)
    samples = []
    for _ in range(VERIFIES):
        started = time.perf_counter()
        await verifier.verify_async(token)
        samples.append(time.perf_counter() - started)
    return samples


def row(name: str, samples: list[float]) -> str:
    median = statistics.median(samples)
    p99 = statistics.quantiles(samples, n=100)[98]
    rate = len(samples) / sum(samples)
    return f"| {name} | {duration(median)} | {duration(p99)} | {rate:,.0f} |"


def duration(seconds: float) -> str:
    return f"{seconds * 1e6:.2f} µs" if seconds < 1e-4 else f"{seconds * 1e3:.3f} ms"


def main() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    issuer = FakeIssuer().start()
    keys = {
        algorithm: IssuerKey.generate(algorithm, rsa_bits=3072) for algorithm in ALGORITHMS
    }  # RSA as the issuer makes it (keys.stores.RSA_KEY_SIZE)
    issuer.keys = list(keys.values())
    roles, scope = ["viewer", "approver", "auditor"], "orders.read orders.approve orders.export"
    tokens = {algorithm: issuer.mint(key=key, roles=roles, scope=scope) for algorithm, key in keys.items()}
    verifier = TokenVerifier(issuer=issuer.url, audience=AUDIENCE)
    key_set = KeySet.import_key_set(json.loads(issuer.jwks_document()))
    lines = [
        f"{VERIFIES} verifications per row, one CPU; median and p99 per call, and calls per second.",
        "",
        "| what | median | p99 | per second (1 core) |",
        "|---|---:|---:|---:|",
    ]
    for algorithm, token in tokens.items():

        def with_kit(t: str = token) -> object:
            return verifier.verify(t)

        lines.append(row(f"`verify`, {algorithm}", timed(with_kit, VERIFIES)))
    es256 = tokens["ES256"]
    lines.append(
        row("`verify_async`, ES256 (fresh cache: no thread)", asyncio.run(timed_async(verifier, es256)))
    )
    for algorithm, token in tokens.items():
        # The floor: the signature check alone, as the kit calls it, on bytes already decoded.
        key = verifier.jwks.key(keys[algorithm].kid)
        header, claims, signature = token.split(".")
        raw, data = b64decode(signature), f"{header}.{claims}".encode()

        def signature_only(k=key, alg=algorithm, sig=raw, signed_bytes=data) -> None:
            k.verify(algorithm=alg, signature=sig, signing_input=signed_bytes)

        lines.append(row(f"floor: the signature check alone, {algorithm}", timed(signature_only, VERIFIES)))
    for algorithm, token in tokens.items():
        public = keys[algorithm].private_key.public_key()

        def with_pyjwt(t=token, key=public, alg=algorithm) -> object:
            return pyjwt.decode(t, key, algorithms=[alg], audience=AUDIENCE, issuer=issuer.url)

        lines.append(
            row(f"reference: PyJWT `jwt.decode`, {algorithm}, key in hand", timed(with_pyjwt, VERIFIES))
        )
    for algorithm, token in tokens.items():

        def with_joserfc(t=token, alg=algorithm) -> object:
            decoded = joserfc_jwt.decode(t, key_set, algorithms=[alg])
            joserfc_jwt.JWTClaimsRegistry(leeway=30).validate(decoded.claims)
            return decoded

        lines.append(
            row(
                f"reference: joserfc `jwt.decode`, {algorithm}, key set in hand",
                timed(with_joserfc, VERIFIES),
            )
        )

    kid = keys["ES256"].kid
    lines.append(
        row("JWKS cache hit (`JwksCache.key`, fresh)", timed(lambda: verifier.jwks.key(kid), VERIFIES * 10))
    )
    lines.append(
        row(
            "JWKS cache hit (`JwksCache.fresh_key`, async path)",
            timed(lambda: verifier.jwks.fresh_key(kid), VERIFIES * 10),
        )
    )

    # A revalidation: the cache's clock moved past max-age, so each call sends If-None-Match and gets 304.
    clock = ManualClock()
    JwksCache.clock = clock  # the cache's clock seam
    revalidating = TokenVerifier(issuer=issuer.url, audience=AUDIENCE)
    revalidating.verify(es256)

    def revalidate() -> None:
        clock.now += 3601
        revalidating.verify(es256)

    lines.append(row("`verify` with a revalidation (304 over loopback HTTP)", timed(revalidate, 300)))

    def cold() -> None:
        TokenVerifier(issuer=issuer.url, audience=AUDIENCE).verify(es256)

    lines.append(row("`verify` cold: metadata + JWKS fetched (loopback HTTP)", timed(cold, 300)))
    issuer.close()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
