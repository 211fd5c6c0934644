"""JWKS requests per second: the app under gunicorn and granian (2 workers each) on PostgreSQL, via wrk.

Recreates the PostgreSQL database BENCH_DATABASE (default ``issuer_http``) from scratch, migrates
it, bootstraps a signing key, serves the app with production settings (DEBUG=false, plain http on
loopback) and measures with wrk: the full JWKS (200), its revalidation (304 on If-None-Match) and
``/healthz`` as the floor of the Django stack. Bounded: BENCH_SECONDS per scenario (default 10);
BENCH_SERVERS picks the servers (default ``gunicorn,granian``).

    .venv/bin/python bench/jwks.py
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
DATABASE = os.environ.get("BENCH_DATABASE", "issuer_http")
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "32"))
WORKERS = 2
SERVERS = [name for name in os.environ.get("BENCH_SERVERS", "gunicorn,granian").split(",") if name]
SERVER_COMMANDS = {
    "gunicorn": lambda port: [
        str(BIN / "gunicorn"),
        "config.wsgi:application",
        f"--workers={WORKERS}",
        f"--bind=127.0.0.1:{port}",
        "--log-level=warning",
    ],
    "granian": lambda port: [
        str(BIN / "granian"),
        "--interface=wsgi",
        f"--workers={WORKERS}",
        "--host=127.0.0.1",
        f"--port={port}",
        "--no-access-log",
        "--log-level=warning",
        "config.wsgi:application",
    ],
}


def main() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk")
    environment = _environment()
    _database_recreate()
    _manage(environment, "migrate", "--noinput", "--verbosity=0")
    _run(
        environment,
        [
            str(BIN / "python"),
            "-c",
            "import django; django.setup(); "
            "from keys.services import signing_key_rotate; signing_key_rotate()",
        ],
    )
    print(
        f"{WORKERS} workers, PostgreSQL, wrk -t2 -c{CONNECTIONS} -d{SECONDS}s, "
        f"{os.cpu_count()} CPUs shared by server and load generator"
    )
    print("| server | request | requests/s | latency avg | latency p99 |")
    print("|---|---|---:|---:|---:|")
    for server in SERVERS:
        for name, (rps, average, p99) in _measure(server, environment):
            print(f"| {server} | {name} | {rps:,.0f} | {average} | {p99} |", flush=True)


def _measure(server_name: str, environment: dict[str, str]) -> list[tuple[str, tuple[float, str, str]]]:
    """The three scenarios against one server process."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(SERVER_COMMANDS[server_name](port), cwd=ROOT, env=environment)
    try:
        _wait_until_serving(f"{base}/healthz", server)
        with urllib.request.urlopen(f"{base}/.well-known/jwks.json", timeout=5) as response:  # noqa: S310
            etag = response.headers["ETag"]
        return [
            ("GET /.well-known/jwks.json (200)", _wrk(f"{base}/.well-known/jwks.json")),
            (
                "GET /.well-known/jwks.json, If-None-Match (304)",
                _wrk(f"{base}/.well-known/jwks.json", header=f"If-None-Match: {etag}"),
            ),
            ("GET /healthz (floor: no DB, no cache)", _wrk(f"{base}/healthz")),
        ]
    finally:
        server.terminate()
        server.wait(timeout=30)


def _environment() -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "false",
        "HTTPS": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "KEY_ENCRYPTION_KEY": secrets.token_urlsafe(32),
        "ALLOWED_HOSTS": "127.0.0.1",
        "TOKEN_ISSUER": "https://issuer.bench.example",
        "ENTRA_TENANT_ID": "00000000-0000-0000-0000-000000000001",
        "ENTRA_AUDIENCE": "api://issuer-bench",
        "ENTRA_REQUIRED_SCOPES": "access_as_user",
        "DATABASE_URL": f"{PG}/{DATABASE}",
        "VAR_DIR": tempfile.mkdtemp(prefix="issuer-bench-"),
        "LOG_LEVEL": "WARNING",
    }


def _database_recreate() -> None:
    # A fresh database each run: keys sealed under an earlier run's random secret are unreadable.
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{DATABASE}"')


def _manage(environment: dict[str, str], *arguments: str) -> None:
    _run(environment, [str(BIN / "python"), "manage.py", *arguments])


def _run(environment: dict[str, str], command: list[str]) -> None:
    subprocess.run(command, cwd=ROOT, env=environment, check=True, timeout=300)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_serving(url: str, server: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("gunicorn exited")
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - our own loopback server
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer in {seconds} s")


def _output_search(pattern: str, output: str) -> re.Match[str]:
    """A value wrk must print; its absence stops the run with the output to read."""
    match = re.search(pattern, output)
    if match is None:
        raise SystemExit(f"no {pattern!r} in the output:\n{output}")
    return match


def _wrk(url: str, header: str | None = None) -> tuple[float, str, str]:
    """(requests/s, average latency, p99 latency) of one bounded wrk run."""
    command = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "--latency", url]
    if header:
        command[1:1] = ["-H", header]
    output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=SECONDS + 60).stdout
    if re.search(r"Non-2xx or 3xx responses", output) or "Socket errors" in output:
        raise SystemExit(f"wrk saw errors:\n{output}")
    rps = float(_output_search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    average = _output_search(r"Latency\s+(\S+)", output).group(1)
    p99 = _output_search(r"99%\s+(\S+)", output).group(1)
    return rps, average, p99


if __name__ == "__main__":
    main()
