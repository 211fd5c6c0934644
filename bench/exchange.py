"""Benchmark of POST /oauth2/token on PostgreSQL against a baseline, in one run.

    .venv/bin/python bench/exchange.py [--seconds 15] [--grants 10 100000] [--servers gunicorn granian]

For each database size it creates a fresh PostgreSQL database, imports a policy with that many
grants (one of them the caller's), bootstraps a signing key and serves the app with 2 workers;
wrk drives the exchange at 8 concurrent clients with one Entra token minted by the fake Entra of
the test suite (served on loopback). The baseline is bench/baseline_app.py under gunicorn with 2
workers: a bare DRF view that verifies one RS256 token and signs one ES256 token. It also counts
the SQL queries of one warm exchange at each size. Needs wrk (Debian package) and PostgreSQL at
BENCH_PG (default postgres://postgres@127.0.0.1:5432). Bounded: every load run lasts --seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat  # noqa: E402

from authz.rfc8693 import ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE  # noqa: E402
from tests import fake_entra as entra  # noqa: E402

PYTHON = str(ROOT / ".venv" / "bin" / "python")
BIN = ROOT / ".venv" / "bin"
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
# For a Unix socket: BENCH_PG=postgres://postgres@ BENCH_PG_QUERY='?host=/var/run/postgresql'
PG_QUERY = os.environ.get("BENCH_PG_QUERY", "")
DATABASE = "issuer_bench_exchange"


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


def psql(sql: str) -> None:
    subprocess.run(["psql", f"{PG}/postgres{PG_QUERY}", "-qc", sql], check=True, capture_output=True)


def policy_document(grants: int) -> dict:
    """The caller holds one grant in tenant t0000; the rest belong to other users over 100 tenants."""
    tenants = [
        {"slug": f"t{n:04d}", "name": f"Tenant {n}", "status": "active", "features": ["exports"]}
        for n in range(100)
    ]
    other_grants = [
        {
            "tenant": f"t{n % 100:04d}",
            "role": "viewer" if n % 2 else "editor",
            "user": f"{n:08x}-0000-4000-8000-{n:012x}",
        }
        for n in range(grants - 1)
    ]
    return {
        "permissions": [
            {"code": "orders.read", "description": "", "requires_feature": None},
            {"code": "orders.write", "description": "", "requires_feature": None},
            {"code": "orders.export", "description": "", "requires_feature": "exports"},
        ],
        "audiences": [
            {
                "id": "api://orders",
                "name": "Orders API",
                "permissions": ["orders.export", "orders.read", "orders.write"],
            }
        ],
        "roles": [
            {"slug": "viewer", "name": "Viewer", "permissions": ["orders.read"], "tenant": None},
            {
                "slug": "editor",
                "name": "Editor",
                "permissions": ["orders.export", "orders.read", "orders.write"],
                "tenant": None,
            },
        ],
        "tenants": tenants,
        "grants": [{"tenant": "t0000", "role": "editor", "user": entra.OID}, *other_grants],
    }


@contextmanager
def served(command: list[str], env: dict[str, str], port: int, log: Path):
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None:
                    raise RuntimeError(f"server exited: {log.read_text()[-2000:]}") from None
                time.sleep(0.2)
        yield
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def post(port: int, body: bytes) -> tuple[int, bytes]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/oauth2/token", body, {"Content-Type": "application/x-www-form-urlencoded"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback only
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def wrk(port: int, body_file: Path, seconds: int) -> dict:
    output = subprocess.run(
        [
            "wrk",
            "-t2",
            "-c8",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(ROOT / "bench" / "exchange.lua"),
            f"http://127.0.0.1:{port}/oauth2/token",
        ],
        env={**os.environ, "BODY_FILE": str(body_file)},
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    rps = float(output_search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    requests = int(output_search(r"(\d+) requests in", output).group(1))
    p50 = output_search(r"50%\s+([\d.]+)(us|ms|s)", output)
    p99 = output_search(r"99%\s+([\d.]+)(us|ms|s)", output)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: (.*)", output)

    def ms(match: re.Match[str]) -> float:
        return float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]

    return {
        "rps": rps,
        "requests": requests,
        "p50_ms": ms(p50),
        "p99_ms": ms(p99),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errors.group(1) if errors else "",
    }


QUERY_COUNT = """
import django, json, os
django.setup()
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
client = Client(HTTP_HOST="127.0.0.1")
body = open(os.environ["BODY_FILE"]).read()
send = lambda: client.post("/oauth2/token", body, content_type="application/x-www-form-urlencoded")
assert send().status_code == 200
with CaptureQueriesContext(connection) as queries:
    assert send().status_code == 200
print(len(queries))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--grants", type=int, nargs="+", default=[10, 100_000])
    parser.add_argument("--servers", nargs="+", default=["gunicorn", "granian"])
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[2, 4], help="service worker counts (the baseline keeps 2)"
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-exchange-"))
    fake = entra.FakeEntra().start()
    token = fake.mint(exp=int(time.time()) + 3 * 3600)
    body = urllib.parse.urlencode(
        {
            "grant_type": TOKEN_EXCHANGE,
            "subject_token": token,
            "subject_token_type": ACCESS_TOKEN_TYPE,
            "audience": "api://orders",
        }
    )
    body_file = work / "body.txt"
    body_file.write_text(body)
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
        "DATABASE_URL": f"{PG}/{DATABASE}{PG_QUERY}",
        "VAR_DIR": str(work),
        "BODY_FILE": str(body_file),
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    env.pop("ENV_FILE", None)
    results: dict[str, dict] = {}

    public_pem = (
        fake.directory(entra.TENANT_ID)
        .signing[1]
        .public_key()
        .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    port = free_port()
    baseline_env = {**env, "BASELINE_RSA_PUBLIC_PEM": public_pem, "BASELINE_AUDIENCE": entra.AUDIENCE}
    with served(
        [str(BIN / "gunicorn"), "-w", "2", "-b", f"127.0.0.1:{port}", "bench.baseline_app:application"],
        baseline_env,
        port,
        work / "baseline.log",
    ):
        assert post(port, body.encode())[0] == 200
        results["baseline (gunicorn, 2 workers)"] = wrk(port, body_file, args.seconds)
        print("baseline", results["baseline (gunicorn, 2 workers)"], flush=True)

    for grants in args.grants:
        psql(f"DROP DATABASE IF EXISTS {DATABASE}")
        psql(f"CREATE DATABASE {DATABASE}")
        subprocess.run([PYTHON, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        policy_file = work / "policy.json"
        policy_file.write_text(json.dumps(policy_document(grants)))
        subprocess.run(
            [PYTHON, "manage.py", "import_policy", str(policy_file)],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [PYTHON, "manage.py", "rotate_keys"], cwd=ROOT, env=env, check=True, capture_output=True
        )
        queries = (
            subprocess.run(
                [PYTHON, "-c", QUERY_COUNT],
                cwd=ROOT,
                env={**env, "LOG_LEVEL": "ERROR"},
                check=True,
                capture_output=True,
                text=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        print(f"{grants} grants: {queries} queries per warm exchange", flush=True)
        for server in args.servers:
            for workers in args.workers:
                port = free_port()
                command = {
                    # The production configuration (config/gunicorn.py), on loopback.
                    "gunicorn": [
                        str(BIN / "gunicorn"),
                        "-c",
                        "config/gunicorn.py",
                        "-w",
                        str(workers),
                        "-b",
                        f"127.0.0.1:{port}",
                        "config.wsgi:application",
                    ],
                    "granian": [
                        str(BIN / "granian"),
                        "--interface",
                        "wsgi",
                        "--workers",
                        str(workers),
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(port),
                        "--no-ws",
                        "config.wsgi:application",
                    ],
                }[server]
                with served(command, env, port, work / f"{server}-{workers}-{grants}.log"):
                    status, answer = post(port, body.encode())
                    assert status == 200, answer
                    result = wrk(port, body_file, args.seconds)
                result["queries"] = int(queries)
                name = f"exchange, {server} ({workers} workers), {grants:,} grants"
                results[name] = result
                print(name, result, flush=True)

    fake.close()
    baseline = results["baseline (gunicorn, 2 workers)"]["rps"]
    print("\n| run | req/s | x baseline | p50 ms | p99 ms | non-2xx | SQL/exchange |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        print(
            f"| {name} | {r['rps']:,.0f} | {r['rps'] / baseline:.2f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} "
            f"| {r['non_2xx']} | {r.get('queries', '-')} |"
        )
    psql(f"DROP DATABASE IF EXISTS {DATABASE}")


if __name__ == "__main__":
    main()
