"""Load soak: minutes of exchanges at 8 clients through a key rotation and a revocation, every token verified.

    .venv/bin/python bench/soak.py [--seconds 300] [--clients 8]

Serves the app on PostgreSQL (database ``issuer_soak``, recreated) with the production entry point
(``python -m config.serve``: gunicorn under ``config/gunicorn.py``), 2 workers and production
settings (plain http on loopback), with ``KEY_PUBLISH_LEAD=30`` and ``JWKS_MAX_AGE=10`` so a
rotation completes inside the run. The fake Entra, the policy and the
environment come from bench/exchange.py. While the clients run:

- a beat stand-in runs ``manage.py rotate_keys`` every ``--beat`` seconds (what Celery beat does);
- at 20% of the run ``rotate_keys --force`` publishes a successor, which the beat activates once the
  publish lead has passed;
- at 70% ``rotate_keys --revoke <the first key>`` removes the old key from the JWKS.

A downstream verifier (its own JWKS cache honouring ``max-age``, one refetch on an unknown ``kid``,
at most every 5 s) verifies every issued token with joserfc: signature, ``typ``, issuer, audience,
lifetime, a unique ``jti``. Prints requests served, errors, verification failures, latency
percentiles, tokens per kid, and checks the exchange counter of /metrics against the count.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from joserfc import jwt  # noqa: E402
from joserfc.errors import JoseError  # noqa: E402
from joserfc.jwk import KeySet  # noqa: E402

from authz.rfc8693 import ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE  # noqa: E402
from bench.exchange import (  # noqa: E402
    PG,
    PG_QUERY,
    PYTHON,
    free_port,
    policy_document,
    psql,
    served,
)
from tests import fake_entra as entra  # noqa: E402

DATABASE = "issuer_soak"
ISSUER = "https://issuer.soak"
AUDIENCE = "api://orders"
PUBLISH_LEAD = 30
JWKS_MAX_AGE = 10
KID_REFETCH_INTERVAL = 5.0


class Verifier:
    """A downstream service: caches our JWKS for its max-age, refetches on an unknown kid (throttled)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.lock = threading.Lock()
        self.keys: KeySet | None = None
        self.kids: set[str] = set()
        self.expires = 0.0
        self.last_kid_refetch = 0.0
        self.fetches = 0
        self.kid_refetches = 0
        self.failures: Counter[str] = Counter()
        self.by_kid: Counter[str] = Counter()
        self.jtis: set[str] = set()

    def _fetch(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        connection.request("GET", "/.well-known/jwks.json", headers={"Host": "127.0.0.1"})
        response = connection.getresponse()
        body = response.read()
        connection.close()
        found = re.search(r"max-age=(\d+)", response.getheader("Cache-Control", ""))
        if found is None:
            raise ValueError("JWKS without max-age")
        max_age = int(found.group(1))
        document = json.loads(body)
        self.keys = KeySet.import_key_set(document)
        self.kids = {key["kid"] for key in document["keys"]}
        self.expires = time.monotonic() + max_age
        self.fetches += 1

    def _key_set_for(self, kid: str) -> KeySet | None:
        with self.lock:
            now = time.monotonic()
            if self.keys is None or now >= self.expires:
                self._fetch()
            if kid not in self.kids and now - self.last_kid_refetch >= KID_REFETCH_INTERVAL:
                self.last_kid_refetch = now
                self.kid_refetches += 1
                self._fetch()
            return self.keys if kid in self.kids else None

    def verify(self, token: str) -> None:
        """Verify one token; a failure is counted under its cause."""
        try:
            header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
            kid = header.get("kid", "")
            if header.get("typ") != "at+jwt":
                raise ValueError("typ")
            key_set = self._key_set_for(kid)
            if key_set is None:
                raise ValueError("unknown kid after refetch")
            decoded = jwt.decode(token, key_set, algorithms=["ES256", "RS256", "PS256"])
            jwt.JWTClaimsRegistry(
                leeway=5,
                iss={"essential": True, "value": ISSUER},
                aud={"essential": True, "value": AUDIENCE},
                sub={"essential": True},
                exp={"essential": True},
                iat={"essential": True},
                jti={"essential": True},
                tenant={"essential": True, "value": "t0000"},
            ).validate(decoded.claims)
            with self.lock:
                if decoded.claims["jti"] in self.jtis:
                    raise ValueError("jti reused")
                self.jtis.add(decoded.claims["jti"])
                self.by_kid[kid] += 1
        except (JoseError, ValueError, KeyError) as error:
            with self.lock:
                self.failures[f"{error.__class__.__name__}: {error}"[:120]] += 1


@dataclass
class Tally:
    """What the clients saw."""

    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    error_times: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def client(port: int, body: str, stop: threading.Event, verifier: Verifier, tally: Tally, t0: float) -> None:
    """One client: exchange after exchange (reconnecting when the server closes), verifying each token."""
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Host": "127.0.0.1"}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    latencies: list[float] = []
    while not stop.is_set():
        started = time.perf_counter()
        try:
            connection.request("POST", "/oauth2/token", body=body, headers=headers)
            response = connection.getresponse()
            answer = response.read()
            status = response.status
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            status, answer = None, error.__class__.__name__.encode()
        latencies.append((time.perf_counter() - started) * 1000)
        if status == 200:
            verifier.verify(json.loads(answer)["access_token"])
        else:
            with tally.lock:
                tally.errors[f"{status} {answer[:80]!r}"] += 1
                tally.error_times.append(time.monotonic() - t0)
    with tally.lock:
        tally.latencies_ms.extend(latencies)


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=300)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--beat", type=int, default=15, help="seconds between rotate_keys runs")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    fake = entra.FakeEntra().start()
    token = fake.mint(exp=int(time.time()) + args.seconds + 3600)
    body = urllib.parse.urlencode(
        {
            "grant_type": TOKEN_EXCHANGE,
            "subject_token": token,
            "subject_token_type": ACCESS_TOKEN_TYPE,
            "audience": AUDIENCE,
        }
    )
    port = free_port()
    env = {
        **os.environ,
        "DEBUG": "false",
        "HTTPS": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "KEY_ENCRYPTION_KEY": secrets.token_urlsafe(32),
        "TOKEN_ISSUER": ISSUER,
        "ENTRA_AUTHORITY": fake.authority,
        "ENTRA_TENANT_ID": entra.TENANT_ID,
        "ENTRA_AUDIENCE": entra.AUDIENCE,
        "ENTRA_REQUIRED_SCOPES": entra.SCOPE,
        "THROTTLE_ADDRESS_RATE": "off",
        "THROTTLE_PRINCIPAL_RATE": "off",
        "DATABASE_URL": f"{PG}/{DATABASE}{PG_QUERY}",
        "VAR_DIR": str(work),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "KEY_PUBLISH_LEAD": str(PUBLISH_LEAD),
        "JWKS_MAX_AGE": str(JWKS_MAX_AGE),
        "WEB_CONCURRENCY": "2",
        "PORT": str(port),
        "PROMETHEUS_MULTIPROC_DIR": str(work / "metrics"),
    }
    env.pop("ENV_FILE", None)
    psql(f"DROP DATABASE IF EXISTS {DATABASE}")
    psql(f"CREATE DATABASE {DATABASE}")
    manage(env, "migrate", "-v0")
    policy_file = work / "policy.json"
    policy_file.write_text(json.dumps(policy_document(10)))
    manage(env, "import_policy", str(policy_file))
    manage(env, "rotate_keys")

    events: list[tuple[float, str]] = []
    command = [PYTHON, "-m", "config.serve"]  # the production entry point: gunicorn under config/gunicorn.py
    with served(command, env, port, work / "gunicorn.log"):
        verifier = Verifier(port)
        tally = Tally()
        stop = threading.Event()
        t0 = time.monotonic()
        clients = [
            threading.Thread(target=client, args=(port, body, stop, verifier, tally, t0), daemon=True)
            for _ in range(args.clients)
        ]
        for thread in clients:
            thread.start()
        while not verifier.by_kid:
            time.sleep(0.1)
        first_kid = next(iter(verifier.by_kid))
        force_at, revoke_at = 0.2 * args.seconds, 0.7 * args.seconds
        forced = revoked = False
        next_beat = args.beat
        while (elapsed := time.monotonic() - t0) < args.seconds:
            if not forced and elapsed >= force_at:
                forced = True
                events.append((elapsed, "rotate_keys --force: " + manage(env, "rotate_keys", "--force")))
            elif not revoked and elapsed >= revoke_at:
                revoked = True
                events.append(
                    (
                        elapsed,
                        f"rotate_keys --revoke {first_kid[:12]}…: "
                        + manage(env, "rotate_keys", "--revoke", first_kid),
                    )
                )
            elif elapsed >= next_beat:
                next_beat += args.beat
                output = manage(env, "rotate_keys")
                if "Nothing due" not in output:
                    events.append((elapsed, "rotate_keys (beat): " + output))
            time.sleep(0.5)
        stop.set()
        for thread in clients:
            thread.join(timeout=30)
        elapsed = time.monotonic() - t0
        metrics = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        metrics.request("GET", "/metrics", headers={"Host": "127.0.0.1"})
        scrape = metrics.getresponse().read().decode()
        verifier._fetch()
        final_kids = set(verifier.kids)

    fake.close()
    psql(f"DROP DATABASE IF EXISTS {DATABASE}")
    served_ok = sum(verifier.by_kid.values()) + sum(verifier.failures.values())
    issued_metric = sum(
        float(line.rsplit(" ", 1)[1])
        for line in scrape.splitlines()
        if line.startswith('issuer_token_exchanges_total{outcome="issued"')
    )
    lat = tally.latencies_ms
    print(f"\nload average at the end: {os.getloadavg()}")
    for at, what in events:
        print(f"  {at:6.1f}s  {' '.join(what.split())}")
    print("\n| figure | value |\n|---|---:|")
    print(f"| duration | {elapsed:.0f} s at {args.clients} clients |")
    print(f"| requests served (200) | {served_ok:,} ({served_ok / elapsed:,.0f}/s) |")
    print(f"| errors (non-200 or transport) | {sum(tally.errors.values())} |")
    print(f"| verification failures | {sum(verifier.failures.values())} |")
    p50, p99 = percentile(lat, 0.5), percentile(lat, 0.99)
    print(f"| latency p50 / p99 / max | {p50:.2f} / {p99:.2f} / {max(lat):.1f} ms |")
    print(f"| tokens per kid | {', '.join(f'{kid[:8]}…: {n:,}' for kid, n in verifier.by_kid.items())} |")
    fetches = f"{verifier.fetches} / {verifier.kid_refetches}"
    print(f"| verifier JWKS fetches / refetches on unknown kid | {fetches} |")
    print(f"| first key still published at the end | {first_kid in final_kids} |")
    print(f"| /metrics issued count (all workers) | {issued_metric:,.0f} |")
    for cause, count in (tally.errors + verifier.failures).most_common(10):
        print(f"  {count} x {cause}")
    if tally.error_times:
        print(f"  errors at seconds: {[round(t, 1) for t in tally.error_times[:20]]}")


if __name__ == "__main__":
    main()
