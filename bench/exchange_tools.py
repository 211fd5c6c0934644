"""What bench/exchange.py (and bench/soak.py) use: servers, wrk, the policy, PostgreSQL, Node."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from authz.rfc8693 import ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE
from tests import fake_entra as entra

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")
BIN = ROOT / ".venv" / "bin"
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
PG_QUERY = os.environ.get("BENCH_PG_QUERY", "")  # e.g. '?host=/var/run/postgresql' for a Unix socket
NODE_DIR = ROOT / "var" / "bench" / "oidc-provider"
OIDC_PROVIDER = "oidc-provider@9.13.3"
THREADS = 4  # gthread: threads per worker
EVERY_PERMISSION = ["orders.export", "orders.read", "orders.write"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def output_search(pattern: str, output: str) -> re.Match[str]:
    """A value a tool must print; its absence stops the run with the output to read."""
    match = re.search(pattern, output)
    if match is None:
        raise SystemExit(f"no {pattern!r} in the output:\n{output}")
    return match


def psql(sql: str, database: str = "postgres") -> str:
    return subprocess.run(
        ["psql", f"{PG}/{database}{PG_QUERY}", "-qAtc", sql], check=True, capture_output=True, text=True
    ).stdout.strip()


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def user_id(n: int) -> str:
    return f"{n:08x}-0000-4000-8000-{n:012x}"


def policy_document(grants: int) -> dict:
    """The bench caller holds one grant in tenant t0000; the rest belong to other users over 100 tenants."""
    tenants = [
        {"slug": f"t{n:04d}", "name": f"Tenant {n}", "status": "active", "features": ["exports"]}
        for n in range(100)
    ]
    other_grants = [
        {"tenant": f"t{n % 100:04d}", "role": "viewer" if n % 2 else "editor", "user": user_id(n)}
        for n in range(grants - 1)
    ]
    return {
        "permissions": [
            {"code": "orders.read", "description": "", "requires_feature": None},
            {"code": "orders.write", "description": "", "requires_feature": None},
            {"code": "orders.export", "description": "", "requires_feature": "exports"},
        ],
        "audiences": [{"id": "api://orders", "name": "Orders API", "permissions": EVERY_PERMISSION}],
        "roles": [
            {"slug": "viewer", "name": "Viewer", "permissions": ["orders.read"], "tenant": None},
            {"slug": "editor", "name": "Editor", "permissions": EVERY_PERMISSION, "tenant": None},
        ],
        "tenants": tenants,
        "grants": [{"tenant": "t0000", "role": "editor", "user": entra.OID}, *other_grants],
    }


def exchange_body(token: str) -> str:
    fields = {
        "grant_type": TOKEN_EXCHANGE,
        "subject_token": token,
        "subject_token_type": ACCESS_TOKEN_TYPE,
        "audience": "api://orders",
    }
    return urllib.parse.urlencode(fields)


@contextmanager
def served(command: list[str], env: dict[str, str], port: int, log: Path) -> Iterator[subprocess.Popen]:
    """The server in its own session until it accepts connections; its whole group stopped after."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"server did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.2)
        yield process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def post(port: int, path: str, body: str) -> tuple[int, bytes]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", body.encode(), {"Content-Type": "application/x-www-form-urlencoded"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback only
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def wrk(port: int, path: str, bodies: Path, seconds: int) -> dict:
    """8 connections (2 threads) for ``seconds``, the bodies in turn: req/s, p50, p99, errors."""
    script = str(ROOT / "bench" / "exchange.lua")
    output = subprocess.run(
        ["wrk", "-t2", "-c8", f"-d{seconds}s", "--latency", "-s", script, f"http://127.0.0.1:{port}{path}"],
        env={**os.environ, "BODY_FILE": str(bodies)},
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)

    def ms(pattern: str) -> float:
        match = output_search(pattern + r"\s+([\d.]+)(us|ms|s)\b", output)
        return float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]

    return {
        "rps": float(output_search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "requests": int(output_search(r"(\d+) requests in", output).group(1)),
        "p50_ms": ms("50%"),
        "p99_ms": ms("99%"),
        "errors": (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, errors.groups())) if errors else 0),
    }


def worker_rss_mb(process: subprocess.Popen | None) -> list[float]:
    """Resident memory of the server's workers (its children, or itself without any), in MB."""
    assert process is not None, "the server was never started"
    pids = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split()
    sizes = []
    for pid in pids or [str(process.pid)]:
        status = Path(f"/proc/{pid}/status").read_text()
        sizes.append(int(output_search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024)
    return sorted(sizes)


def transactions(database: str) -> int:
    """Transactions PostgreSQL counted in ``database`` (a backend's count arrives when it exits)."""
    sql = f"SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '{database}'"  # noqa: S608
    return int(psql(sql))


QUERY_COUNT = """
import django, os, time
django.setup()
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from lib.table_changes import table_changes
client = Client(HTTP_HOST="127.0.0.1")
body = open(os.environ["BODY_FILE"]).readline().strip()
send = lambda: client.post("/oauth2/token", body, content_type="application/x-www-form-urlencoded")
assert send().status_code == 200
deadline = time.monotonic() + 10
while os.environ.get("POLICY_CACHE") != "off" and table_changes.generation() is None:
    assert time.monotonic() < deadline, "the listener did not start"
    time.sleep(0.05)
assert send().status_code == 200
with CaptureQueriesContext(connection) as queries:
    assert send().status_code == 200
print(len(queries))
"""


CACHE_FILL = """
import django, os, sys, time
django.setup()
from authz.snapshot_cache import exchange_inputs_cached, snapshot_cache
from bench.exchange_tools import user_id
from lib.table_changes import table_changes
def rss():
    return int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0]) / 1024
deadline = time.monotonic() + 10
while table_changes.generation() is None:
    assert time.monotonic() < deadline, "the listener did not start"
    time.sleep(0.05)
before = rss()
for n in range(int(sys.argv[1])):
    query = {"user_id": user_id(n), "group_ids": frozenset(), "tenant_slug": None, "audience": "api://orders"}
    exchange_inputs_cached(provider=os.environ["ENTRA_TENANT_ID"], **query)
print(len(snapshot_cache), snapshot_cache.estimated_bytes, round(before), round(rss()))
"""


def cache_fill(env: dict[str, str], callers: int) -> dict[str, int]:
    """One process's policy cache after ``callers`` different callers: entries, estimated bytes, RSS."""
    output = subprocess.run(
        [PYTHON, "-c", CACHE_FILL, str(callers)],
        cwd=ROOT,
        env={**env, "LOG_LEVEL": "ERROR", "POLICY_CACHE": "on"},
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    ).stdout
    entries, estimated, before, after = map(int, output.strip().splitlines()[-1].split())
    return {
        "callers": callers,
        "entries": entries,
        "estimated_bytes": estimated,
        "rss_before": before,
        "rss_after": after,
    }


def warm_queries(env: dict[str, str], cache: str) -> int:
    """SQL statements of one warm exchange, counted through Django in a process of its own."""
    output = subprocess.run(
        [PYTHON, "-c", QUERY_COUNT],
        cwd=ROOT,
        env={**env, "LOG_LEVEL": "ERROR", "POLICY_CACHE": cache},
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return int(output.strip().splitlines()[-1])


def server_command(server: str, app: str, port: int, workers: int) -> list[str]:
    """``sync`` and ``gthread`` are gunicorn, ``granian`` its WSGI interface; the service is served by
    the production entry point (``python -m config.serve``: config/gunicorn.py, JSON access log)."""
    if server == "granian":
        host = ["--host", "127.0.0.1", "--port", str(port)]
        return [str(BIN / "granian"), "--interface", "wsgi", "--workers", str(workers), *host, "--no-ws", app]
    threads = ["--worker-class", "gthread", "--threads", str(THREADS)] if server == "gthread" else []
    if app == "config.wsgi:application":
        return [PYTHON, "-m", "config.serve", "--workers", str(workers), *threads]
    return [str(BIN / "gunicorn"), "-w", str(workers), "-b", f"127.0.0.1:{port}", *threads, app]


def node_install() -> Path:
    """oidc-provider under var/bench/ (npm, once); the directory to give Node as NODE_PATH."""
    modules = NODE_DIR / "node_modules"
    if not (modules / "oidc-provider").exists():
        NODE_DIR.mkdir(parents=True, exist_ok=True)
        (NODE_DIR / "package.json").write_text('{"private": true}\n')
        npm = ["npm", "install", "--no-audit", "--no-fund", OIDC_PROVIDER]
        subprocess.run(npm, cwd=NODE_DIR, check=True, capture_output=True, timeout=600)
    return modules


def database_prepare(env: dict[str, str], database: str, grants: int, work: Path) -> None:
    """A fresh ``database``: migrated, the bench policy with ``grants`` grants, a signing key."""
    psql(f"DROP DATABASE IF EXISTS {database}")
    psql(f"CREATE DATABASE {database}")
    env = {**env, "DATABASE_URL": f"{PG}/{database}{PG_QUERY}"}
    subprocess.run([PYTHON, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    policy_file = work / "policy.json"
    policy_file.write_text(json.dumps(policy_document(grants)))
    for command in (["import_policy", str(policy_file)], ["rotate_keys"]):
        subprocess.run([PYTHON, "manage.py", *command], cwd=ROOT, env=env, check=True, capture_output=True)


def database_copy(template: str, database: str) -> None:
    psql(f"DROP DATABASE IF EXISTS {database}")
    psql(f"CREATE DATABASE {database} TEMPLATE {template}")
