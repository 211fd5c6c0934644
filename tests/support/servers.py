"""The issuer under gunicorn in a subprocess, for tests that need a real server and its logs.

``app_environment`` builds a development environment pointed at the fake Entra, ``app_database_prepare``
migrates and loads a one-grant policy with a first signing key, ``app_server`` runs gunicorn on a free
loopback port.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from authz.rfc8693 import ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE
from tests import fake_entra as entra

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0
ONE_GRANT_POLICY = {
    "permissions": [{"code": "orders.read", "description": "Read orders", "requires_feature": None}],
    "audiences": [{"id": "api://orders", "name": "Orders API", "permissions": ["orders.read"]}],
    "roles": [{"slug": "viewer", "name": "Viewer", "permissions": ["orders.read"], "tenant": None}],
    "tenants": [{"slug": "acme", "name": "Acme", "status": "active", "features": []}],
    "grants": [{"tenant": "acme", "role": "viewer", "user": entra.OID, "valid_until": None}],
}


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class AppServer:
    """The issuer under gunicorn on a loopback port; its stderr (every log line) goes to ``log``."""

    url: str
    log: Path
    process: subprocess.Popen = field(repr=False)

    def get(self, path: str) -> Answer:
        return self._call(urllib.request.Request(self.url + path))  # noqa: S310 (our loopback server)

    def exchange(self, token: str, **fields: str) -> Answer:
        body = {
            "grant_type": TOKEN_EXCHANGE,
            "subject_token": token,
            "subject_token_type": ACCESS_TOKEN_TYPE,
            "audience": "api://orders",
            **fields,
        }
        request = urllib.request.Request(  # noqa: S310 (our loopback server)
            self.url + "/oauth2/token",
            data=urlencode(body).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        return self._call(request)

    def _call(self, request: urllib.request.Request) -> Answer:
        try:
            with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310 (loopback)
                return Answer(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as error:
            return Answer(error.code, dict(error.headers), error.read())


def app_environment(*, database_url: str, var_dir: Path, authority: str, **extra: str) -> dict[str, str]:
    """A development environment for the subprocess, pointed at the fake Entra and ``database_url``."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DATABASE_", "CELERY_", "CACHE_", "ENTRA_", "THROTTLE_", "ENV_FILE"))
    }
    env.update(
        DEBUG="true",
        HTTPS="false",
        ALLOWED_HOSTS="127.0.0.1",
        DATABASE_URL=database_url,
        CACHE_URL="locmemcache://",
        VAR_DIR=str(var_dir),
        ENTRA_AUTHORITY=authority,
        ENTRA_TENANT_ID=entra.TENANT_ID,
        ENTRA_AUDIENCE=entra.AUDIENCE,
        ENTRA_REQUIRED_SCOPES=entra.SCOPE,
        ENTRA_REQUIRED_ROLES=entra.ROLE,
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run(  # noqa: S603 (our own interpreter and manage.py)
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, timeout=120
    )


def app_database_prepare(env: dict[str, str], tmp_path: Path) -> None:
    """Migrate, import a one-grant policy and create a first signing key, as `make run` does."""
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(ONE_GRANT_POLICY))
    manage(env, "migrate", "--noinput")
    manage(env, "import_policy", str(policy))
    manage(env, "rotate_keys")


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return probe.getsockname()[1]


@contextmanager
def app_server(env: dict[str, str], log: Path, *options: str) -> Iterator[AppServer]:
    """gunicorn with one sync worker on a free loopback port, stopped (TERM, then KILL) on exit.

    ``options`` go first on gunicorn's command line (``-c config/gunicorn.py`` for production's).
    """
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        *options,
        "config.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "1",
        "--timeout",
        "30",
    ]
    with log.open("wb") as stderr:
        process = subprocess.Popen(  # noqa: S603
            command, cwd=ROOT, env={**env, "PORT": str(port)}, stdout=stderr, stderr=stderr
        )
    server = AppServer(url=f"http://127.0.0.1:{port}", log=log, process=process)
    with serving(server, process, log, what="the server"):
        yield server


@contextmanager
def serving(server: Any, process: subprocess.Popen, log: Path, *, what: str) -> Iterator[None]:
    """Until ``server`` answers /healthz with 200; SIGTERM (then SIGKILL) ``process`` on the way out."""
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert process.poll() is None, f"{what} exited:\n{log.read_text()}"
            with suppress(OSError):
                if server.get("/healthz").status == 200:
                    break
            assert time.monotonic() < deadline, f"{what} did not start:\n{log.read_text()}"
            time.sleep(0.1)  # polling a child process's start, not the clock under test
        yield
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
