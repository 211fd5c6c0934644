"""Several instances on the real engines, under load and faults, on this machine.

    .venv/bin/python bench/cluster.py [--seconds 8] [--clients 8] [--rate 20] [--only rotation revoke …]

Starts, from the operator files in deploy/: three web instances (the Procfile's `web`, that is
`python -m config.serve`, DEBUG=false, plain http on 127.0.0.1, one port and one worker each),
HAProxy (Debian's /usr/sbin/haproxy) with deploy/haproxy.cfg in front, a Celery worker and one beat
(the Procfile's) on a redis-server of its own (127.0.0.1:6390, no persistence: cache and throttles
in db 0, the broker in db 1), a fresh PostgreSQL database `cluster_bench` on 127.0.0.1:5432, and the
test suite's fake Entra on loopback. The environment is deploy/issuer.env.example with this machine's
values laid over it, and a short key schedule so that a rotation fits in the run (JWKS_MAX_AGE=5,
KEY_PUBLISH_LEAD=10, the beat checking every 2 s).

`--clients` threads (8 to 32) each exchange their own user's Entra token through HAProxy and verify
every issued token with the downstream kit's TokenVerifier (each its own JWKS cache). Meanwhile the
scenarios run one after another, each at least `--seconds` long (cluster_scenarios.py), and each
prints a Markdown row: requests, errors by kind, verification failures, seconds to settle, notes.
Every wait is bounded; Ctrl-C or an error stops everything it started (each process in its own
group, stopped from a `finally`), and the database is dropped unless `--keep`.
"""

from __future__ import annotations

import argparse
import json
import secrets
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.cluster_faults import (  # noqa: E402
    database_connections_killed,
    entra_outage_start,
    instance_killed,
    redis_restarted,
    second_beat,
)
from bench.cluster_load import Load  # noqa: E402
from bench.cluster_scenarios import (  # noqa: E402
    Cluster,
    Row,
    grant_revoked,
    revoke,
    rotation,
    steady,
    tenant_suspended,
)
from bench.cluster_stack import (  # noqa: E402
    Stack,
    cluster_environment,
    database_recreate,
    free_port,
    haproxy_environment,
    haproxy_servers,
    haproxy_start,
    psql,
    redis_start,
    wait_for,
)
from tests import fake_entra as entra  # noqa: E402

DATABASE = "cluster_bench"
ISSUER = "https://issuer.cluster.test"
PUBLISH_LEAD = 10
JWKS_MAX_AGE = 5
CHECK_INTERVAL = 2
GRANT_USER = "bbbbbbbb-0000-4000-8000-00000000000b"
TENANT_USER = "cccccccc-0000-4000-8000-00000000000c"
# In this order: the key and policy changes first, then the faults.
SCENARIOS: dict[str, Callable[[Cluster], Row]] = {
    "steady": steady,
    "rotation": rotation,
    "revoke": revoke,
    "grant": grant_revoked,
    "tenant": tenant_suspended,
    "kill": instance_killed,
    "redis": redis_restarted,
    "postgres": database_connections_killed,
    "beat": second_beat,
    "entra": entra_outage_start,
}
HEADER = (
    "| scenario | requests | errors by kind | verification failures | settled (s) | what happened |\n"
    "|---|---:|---|---|---:|---|"
)


def load_user(number: int) -> str:
    return f"{number:08x}-0000-4000-8000-{number:012x}"


def policy(clients: int) -> dict:
    """acme: one grant per load client; beta and gamma: one probe user each, for their scenarios."""
    return {
        "permissions": [{"code": "orders.read", "description": "Read orders", "requires_feature": None}],
        "audiences": [{"id": "api://orders", "name": "Orders API", "permissions": ["orders.read"]}],
        "roles": [{"slug": "viewer", "name": "Viewer", "permissions": ["orders.read"], "tenant": None}],
        "tenants": [
            {"slug": slug, "name": slug.title(), "status": "active", "features": []}
            for slug in ("acme", "beta", "gamma")
        ],
        "grants": [
            *({"tenant": "acme", "role": "viewer", "user": load_user(n)} for n in range(1, clients + 1)),
            {"tenant": "beta", "role": "viewer", "user": GRANT_USER},
            {"tenant": "gamma", "role": "viewer", "user": TENANT_USER},
        ],
    }


def environment(*, fake: entra.FakeEntra, redis_port: int, work: Path) -> dict[str, str]:
    return cluster_environment(
        {
            "SECRET_KEY": secrets.token_urlsafe(50),
            "KEY_ENCRYPTION_KEY": secrets.token_urlsafe(32),
            "ALLOWED_HOSTS": "127.0.0.1",
            "TOKEN_ISSUER": ISSUER,
            # Plain http on loopback: HAProxy here ends no TLS, so nothing sets X-Forwarded-Proto https.
            "HTTPS": "false",
            "BIND_HOST": "127.0.0.1",
            "WEB_CONCURRENCY": "1",
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DATABASE}",
            "CACHE_URL": f"redis://127.0.0.1:{redis_port}/0",
            "CELERY_BROKER_URL": f"redis://127.0.0.1:{redis_port}/1",
            "ENTRA_AUTHORITY": fake.authority,
            "ENTRA_TENANT_ID": entra.TENANT_ID,
            "ENTRA_AUDIENCE": entra.AUDIENCE,
            "ENTRA_REQUIRED_SCOPES": entra.SCOPE,
            "ENTRA_REQUIRED_ROLES": entra.ROLE,
            # Every client comes from 127.0.0.1 and each user sends 20+ a second: limits far above
            # that keep the throttles on (counting in Redis) without refusing the bench.
            "THROTTLE_ADDRESS_RATE": "1000000/minute",
            "THROTTLE_PRINCIPAL_RATE": "1000000/minute",
            "JWKS_MAX_AGE": str(JWKS_MAX_AGE),
            "KEY_PUBLISH_LEAD": str(PUBLISH_LEAD),
            "KEY_ROTATION_INTERVAL": str(30 * 86_400),
            "KEY_ROTATION_CHECK_INTERVAL": str(CHECK_INTERVAL),
            "METRICS_ALLOWED_IPS": "127.0.0.1",
            "VAR_DIR": str(work),
        }
    )


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8, help="the shortest window of each scenario")
    parser.add_argument("--clients", type=int, default=8, choices=range(8, 33), metavar="8..32")
    parser.add_argument("--rate", type=float, default=20, help="exchanges a second per client; 0: flat out")
    parser.add_argument("--redis-port", type=int, default=6390)
    parser.add_argument("--only", nargs="+", choices=list(SCENARIOS), help="run these scenarios only")
    parser.add_argument("--keep", action="store_true", help="keep the database and logs for a look")
    return parser.parse_args()


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> None:
    args = arguments()
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    work = Path(tempfile.mkdtemp(prefix="cluster-bench-"))
    fake = entra.FakeEntra().start()
    stack = Stack(work=work, environment=environment(fake=fake, redis_port=args.redis_port, work=work))
    load: Load | None = None
    rows: list[Row] = []
    started = time.monotonic()
    print(f"cluster: logs in {work}", flush=True)
    try:
        database_recreate(DATABASE)
        redis_start(stack, args.redis_port)
        policy_file = work / "policy.json"
        policy_file.write_text(json.dumps(policy(args.clients)))
        stack.manage("migrate", "--noinput", timeout=300)
        stack.manage("import_policy", str(policy_file))
        stack.manage("rotate_keys")
        stack.start_procfile("worker", "worker")
        stack.start_procfile("beat", "beat")
        web_ports = {f"web{n}": free_port() for n in (1, 2, 3)}
        for name, port in web_ports.items():
            stack.start_procfile(name, "web", PORT=str(port))
        for name, port in web_ports.items():
            stack.wait_ready(stack.processes[name], port)
        socket_path = work / "haproxy.sock"
        port = free_port()
        haproxy_start(
            stack,
            haproxy_environment(
                port=port, web_ports=list(web_ports.values()), socket_path=socket_path, maxconn=4
            ),
        )
        wait_for(
            "HAProxy to see three instances up",
            lambda: socket_path.exists() and set(haproxy_servers(socket_path).values()) == {"UP"},
        )
        expires = int(time.time()) + 3 * 3600
        tokens = [fake.mint(oid=load_user(n), exp=expires) for n in range(1, args.clients + 1)]
        load = Load(port=port, issuer=ISSUER, tokens=tokens, rate=args.rate)
        load.start()
        cluster = Cluster(
            stack=stack,
            load=load,
            fake=fake,
            web_ports=web_ports,
            haproxy_socket=socket_path,
            redis_port=args.redis_port,
            database=DATABASE,
            tokens={
                "load": tokens[0],
                "grant": fake.mint(oid=GRANT_USER, exp=expires),
                "tenant": fake.mint(oid=TENANT_USER, exp=expires),
            },
            seconds=args.seconds,
            publish_lead=PUBLISH_LEAD,
            check_interval=CHECK_INTERVAL,
            jwks_max_age=JWKS_MAX_AGE,
            work=work,
        )
        print(f"cluster: up after {time.monotonic() - started:.0f} s; {args.clients} clients\n", flush=True)
        print(HEADER, flush=True)
        for name, scenario in SCENARIOS.items():
            if args.only and name not in args.only:
                continue
            rows.append(scenario(cluster))
            print(rows[-1].markdown(), flush=True)
    finally:
        # Cleaning up is bounded (SIGTERM, then SIGKILL after 20 s per process): a second Ctrl-C
        # must not cut it short and leave processes running.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if load is not None:
            load.stop()
        stack.stop_all()
        fake.close()
        if not args.keep:
            try:
                psql(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
            except RuntimeError as error:
                print(f"cluster: {error}", file=sys.stderr)
        print(
            f"\ncluster: {len(rows)} scenarios in {time.monotonic() - started:.0f} s; logs in {work}",
            flush=True,
        )
    if rows:
        print("\n" + HEADER)
        for done in rows:
            print(done.markdown())


if __name__ == "__main__":
    main()
