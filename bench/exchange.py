"""Benchmark of POST /oauth2/token on PostgreSQL against a floor and Node's oidc-provider, in one run.

    .venv/bin/python bench/exchange.py [--seconds 8] [--rounds 3] [--grants 10 100000]
                                       [--servers sync gthread granian] [--workers 2] [--callers 1000]

Every server is started at once and then driven in turn by wrk (8 connections, ``--seconds`` each),
round after round, so that the floor, the reference and the exchange of one round share the same
minute of a noisy machine; ratios are taken within each round, and the table gives medians.

- **floor**: ``bench/baseline_app.py`` (a bare DRF view: verify one RS256 token with PyJWT, sign
  one ES256 token; no database, no middleware, no log), under each WSGI server measured;
- **oidc-provider**: Node's ``oidc-provider`` (npm, installed under var/bench/ at the first run)
  issuing ES256 JWT access tokens for client credentials, in 1 process and in ``--workers``;
- **exchange**: the service under each server, production settings (JSON logs, the decision log,
  metrics), throttles off, each on a PostgreSQL database of its own (a copy of one holding the bench
  policy: ``--grants`` grants over 100 tenants, imported with ``import_policy``), one Entra token
  from the test suite's fake Entra; one more on the first server with ``POLICY_CACHE=off``; and at
  the largest size ``--callers`` different callers in turn (after two unmeasured passes, so that
  each worker has met each caller; wrk's two threads each go through the callers in order).
  ``sync`` and ``gthread`` are the production entry point (``python -m config.serve``).

Per exchange server: the SQL statements of one warm exchange counted through Django (cache on /
off), the database transactions per request while wrk drove it (PostgreSQL's counters, read before
and after each run: the listener's heartbeats and the signing-key re-checks included), each
worker's RSS at the end.
Needs wrk, node/npm and PostgreSQL at BENCH_PG (postgres://postgres@127.0.0.1:5432; databases
perf_bench_exchange*). Bounded: every load run lasts ``--seconds``; every server is stopped.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat  # noqa: E402

from bench.exchange_tools import (  # noqa: E402
    BIN,
    PG,
    PG_QUERY,
    PYTHON,
    cache_fill,
    database_copy,
    database_prepare,
    exchange_body,
    free_port,
    load_average,
    node_install,
    policy_document,
    post,
    psql,
    served,
    server_command,
    transactions,
    user_id,
    warm_queries,
    worker_rss_mb,
    wrk,
)
from tests import fake_entra as entra  # noqa: E402

# bench/soak.py reuses these.
__all__ = ["BIN", "PG", "PG_QUERY", "PYTHON", "free_port", "policy_document", "psql", "served"]

DATABASE = "perf_bench_exchange"
WARM_PASSES = 2
STATS_SETTLE = 1.5  # seconds for PostgreSQL's per-database counters to include a backend's last work
OIDC_BODY = (
    "grant_type=client_credentials&client_id=bench&client_secret=bench-client-secret-0123456789abcdef"
    "&scope=orders.read%20orders.write&resource=api%3A%2F%2Forders"
)


@dataclass
class Server:
    command: list[str]
    env: dict[str, str]
    port: int
    path: str
    database: str | None = None
    process: subprocess.Popen | None = None
    rss: list[float] = field(default_factory=list)
    queries: dict[str, int] = field(default_factory=dict)


@dataclass
class Target:
    name: str
    server: Server
    bodies: Path
    floor: str | None = None  # the floor target it is compared with
    samples: list[dict] = field(default_factory=list)
    xacts: int = 0  # transactions PostgreSQL counted in the server's database while wrk drove it


class Run:
    """The targets measured so far, their samples and the ratios taken within each round."""

    def __init__(self, seconds: int) -> None:
        self.seconds = seconds
        self.targets: list[Target] = []
        self.ratios: dict[tuple[str, str], list[float]] = {}
        self.reference: str | None = None
        self.notes: list[str] = []

    def round(self, targets: list[Target]) -> None:
        for target in targets:
            database = target.server.database
            if database:  # counters settled (an idle backend reports within a second)
                time.sleep(STATS_SETTLE)
                before = transactions(database)
            sample = wrk(target.server.port, target.server.path, target.bodies, self.seconds)
            if database:
                time.sleep(STATS_SETTLE)
                target.xacts += transactions(database) - before
            sample["load"] = load_average()
            target.samples.append(sample)
            print(f"  {target.name}: {sample}", flush=True)
        rps = {target.name: target.samples[-1]["rps"] for target in targets}
        for target in targets:
            for kind, other in (("floor", target.floor), ("reference", self.reference)):
                if other in rps and other != target.name:
                    self.ratios.setdefault((target.name, kind), []).append(rps[target.name] / rps[other])


def start(server: Server, stack: ExitStack, log: Path, body: str) -> Server:
    server.process = stack.enter_context(served(server.command, server.env, server.port, log))
    status, answer = post(server.port, server.path, body)
    assert status == 200, answer
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--grants", type=int, nargs="+", default=[10, 100_000])
    parser.add_argument("--servers", nargs="+", default=["sync", "gthread", "granian"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--callers", type=int, default=1000, help="callers in turn at the largest size; 0: none"
    )
    parser.add_argument("--fill", type=int, default=20_000, help="callers to fill one cache with; 0: none")
    parser.add_argument("--no-node", action="store_true", help="leave oidc-provider out")
    args = parser.parse_args()
    print(f"load average before the run: {load_average()}", flush=True)

    work = Path(tempfile.mkdtemp(prefix="bench-exchange-"))
    fake = entra.FakeEntra().start()
    expires = int(time.time()) + 3 * 3600
    one_caller = work / "body.txt"
    one_caller.write_text(exchange_body(fake.mint(exp=expires)) + "\n")
    body = one_caller.read_text().strip()
    env = {
        **os.environ,
        "DEBUG": "false",
        "HTTPS": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "KEY_ENCRYPTION_KEY": secrets.token_urlsafe(32),
        "TOKEN_ISSUER": "https://issuer.bench",
        "ENTRA_AUTHORITY": fake.authority,
        "ENTRA_TENANT_ID": entra.TENANT_ID,
        "ENTRA_AUDIENCE": entra.AUDIENCE,
        "ENTRA_REQUIRED_SCOPES": entra.SCOPE,
        "THROTTLE_ADDRESS_RATE": "off",
        "THROTTLE_PRINCIPAL_RATE": "off",
        "VAR_DIR": str(work),
        "BODY_FILE": str(one_caller),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "BIND_HOST": "127.0.0.1",
    }
    for name in ("ENV_FILE", "PROMETHEUS_MULTIPROC_DIR", "POLICY_CACHE", "DATABASE_URL", "WEB_CONCURRENCY"):
        env.pop(name, None)
    public_pem = (
        fake.directory(entra.TENANT_ID)
        .signing[1]
        .public_key()
        .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    floor_env = {**env, "BASELINE_RSA_PUBLIC_PEM": public_pem, "BASELINE_AUDIENCE": entra.AUDIENCE}
    run = Run(args.seconds)
    with ExitStack() as lasting:
        fixed: list[Target] = []
        for server_kind in args.servers:
            port = free_port()
            command = server_command(server_kind, "bench.baseline_app:application", port, args.workers)
            server = start(
                Server(command, floor_env, port, "/oauth2/token"), lasting, work / f"floor-{port}.log", body
            )
            fixed.append(Target(f"floor, {server_kind}", server, one_caller))
        if not args.no_node:
            node_env = {**env, "NODE_PATH": str(node_install())}
            oidc_body = work / "oidc.txt"
            oidc_body.write_text(OIDC_BODY + "\n")
            for processes in sorted({1, args.workers}):
                port = free_port()
                command = ["node", str(ROOT / "bench" / "oidc_provider.mjs"), str(port), str(processes)]
                server = start(
                    Server(command, node_env, port, "/token"), lasting, work / f"node-{port}.log", OIDC_BODY
                )
                fixed.append(
                    Target(f"oidc-provider, {processes} process{'es' * (processes > 1)}", server, oidc_body)
                )
            run.reference = fixed[len(args.servers)].name
        run.targets += fixed

        for grants in args.grants:
            database_prepare(env, DATABASE, grants, work)
            database_env = {**env, "DATABASE_URL": f"{PG}/{DATABASE}{PG_QUERY}"}
            queries = {cache: warm_queries(database_env, cache) for cache in ("on", "off")}
            print(f"{grants:,} grants: SQL statements per warm exchange {queries}", flush=True)
            if grants == max(args.grants) and args.fill:
                fill = cache_fill(database_env, args.fill)
                print(
                    f"{grants:,} grants: one process's cache after {args.fill:,} callers: {fill}", flush=True
                )
                run.notes.append(
                    f"One process's cache at {grants:,} grants after {args.fill:,} different callers: "
                    f"{fill['entries']:,} entries, {fill['estimated_bytes'] / 2**20:.1f} MiB by estimate, "
                    f"RSS {fill['rss_before']} MB before, {fill['rss_after']} MB after."
                )
            callers = None
            if grants == max(args.grants) and args.callers > 1:
                callers = work / "callers.txt"
                lines = [exchange_body(fake.mint(oid=user_id(n), exp=expires)) for n in range(args.callers)]
                callers.write_text("".join(line + "\n" for line in lines))
            with ExitStack() as sized:
                singles, many = [], []
                variants = [(kind, "on") for kind in args.servers] + [(args.servers[0], "off")]
                for index, (server_kind, cache) in enumerate(variants):
                    server = exchange_server(args, env, server_kind, cache, f"{DATABASE}_{index}", work)
                    server.queries = queries
                    start(server, sized, work / f"exchange-{server.port}.log", body)
                    label = f"exchange, {server_kind}{', cache off' * (cache == 'off')}, {grants:,} grants"
                    floor = f"floor, {server_kind}"
                    singles.append(Target(f"{label}, 1 caller", server, one_caller, floor))
                    if callers is not None and cache == "on":
                        many.append(Target(f"{label}, {args.callers:,} callers", server, callers, floor))
                for number in range(args.rounds):
                    print(f"{grants:,} grants, round {number + 1}", flush=True)
                    run.round(fixed + singles)
                for target in many:  # unmeasured passes: every worker meets every caller
                    for _ in range(WARM_PASSES):
                        wrk(target.server.port, target.server.path, target.bodies, args.seconds)
                for number in range(args.rounds if many else 0):
                    print(f"{grants:,} grants, {args.callers:,} callers, round {number + 1}", flush=True)
                    run.round(fixed + many)
                for target in singles:
                    target.server.rss = worker_rss_mb(target.server.process)
            run.targets += singles + many
            restarts = {
                target.name.rsplit(", 1 caller", 1)[0]: (work / f"exchange-{target.server.port}.log")
                .read_text()
                .count("Autorestarting worker")
                for target in singles
            }
            if any(restarts.values()):
                recycled = ", ".join(f"{name}: {count}" for name, count in restarts.items() if count)
                run.notes.append(f"Workers recycled by gunicorn's max_requests during the run: {recycled}.")
            for target in singles:
                psql(f"DROP DATABASE IF EXISTS {target.server.database}")
        for target in fixed:
            target.server.rss = worker_rss_mb(target.server.process)

    fake.close()
    psql(f"DROP DATABASE IF EXISTS {DATABASE}")
    print(
        f"\nload average after the run: {load_average()}; {args.workers} workers per server; medians of "
        f"{args.rounds} rounds of {args.seconds} s (wrk, 8 connections); ratios taken within each round\n"
    )
    print_table(run)
    for note in run.notes:
        print(f"\n{note}")


def exchange_server(
    args: argparse.Namespace, env: dict, kind: str, cache: str, database: str, work: Path
) -> Server:
    """An exchange server (not started) on its own copy of the bench database."""
    database_copy(DATABASE, database)
    port = free_port()
    metrics = work / f"metrics-{port}"
    metrics.mkdir()
    server_env = {
        **env,
        "PORT": str(port),
        "DATABASE_URL": f"{PG}/{database}{PG_QUERY}",
        "POLICY_CACHE": cache,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
    }
    command = server_command(kind, "config.wsgi:application", port, args.workers)
    return Server(command, server_env, port, "/oauth2/token", database=database)


def print_table(run: Run) -> None:
    print(
        "| target | req/s | x floor (same server) | x oidc-provider (1 process) | p50 ms | p99 ms | errors "
        "| SQL/warm exchange (cache on / off) | DB transactions/request | worker RSS MB |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for target in run.targets:
        server = target.server

        def median(values: list[float]) -> str:
            return f"{statistics.median(values):.2f}" if values else "-"

        cells = [
            target.name,
            f"{statistics.median(s['rps'] for s in target.samples):,.0f}",
            median(run.ratios.get((target.name, "floor"), [])),
            median(run.ratios.get((target.name, "reference"), [])),
            median([s["p50_ms"] for s in target.samples]),
            median([s["p99_ms"] for s in target.samples]),
            str(sum(s["errors"] for s in target.samples)),
            f"{server.queries['on']} / {server.queries['off']}" if server.queries else "-",
            f"{target.xacts / sum(s['requests'] for s in target.samples):.3f}" if server.database else "-",
            ", ".join(f"{mb:.0f}" for mb in server.rss),
        ]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
