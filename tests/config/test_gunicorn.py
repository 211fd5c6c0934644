"""config/gunicorn.py for real: 2 workers, JSON access log without query strings, metrics summed over
workers, a clean stop, and a bad KEY_ENCRYPTION_KEY stopping the master before any worker forks."""

from __future__ import annotations

import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.settings import PRODUCTION

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = str(Path(sys.executable).parent / "gunicorn")
START_TIMEOUT = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> dict[str, str]:
    """A production environment on a migrated SQLite file with one signing key."""
    var = tmp_path_factory.mktemp("gunicorn")
    environment = {
        "PATH": os.environ["PATH"],
        **PRODUCTION,
        "HTTPS": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "VAR_DIR": str(var),
        "DATABASE_URL": f"sqlite:///{var / 'db.sqlite3'}",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "WEB_CONCURRENCY": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(var / "metrics"),
    }
    for command in (["migrate", "-v0"], ["rotate_keys"]):
        manage = [sys.executable, "manage.py", *command]
        subprocess.run(manage, cwd=ROOT, env=environment, check=True, capture_output=True)  # noqa: S603
    return environment


def start(environment: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen(  # noqa: S603 - the virtualenv's gunicorn with our config
            [GUNICORN, "-c", "config/gunicorn.py", "config.wsgi:application"],
            cwd=ROOT,
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def request(port: int, method: str, path: str, body: str | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if body is not None else {}
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    answer = response.status, response.read()
    connection.close()
    return answer


@pytest.fixture
def served(site, tmp_path):
    port = free_port()
    log = tmp_path / "gunicorn.log"
    process = start({**site, "PORT": str(port)}, log)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            if request(port, "GET", "/healthz")[0] == 200:
                break
        except OSError:
            pass
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    yield port, log, process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=40)


def test_the_access_log_is_json_with_the_path_and_never_the_query(served):
    port, log, _process = served

    assert request(port, "GET", "/healthz?subject_token=secret-value-123")[0] == 200

    lines = [json.loads(line) for line in log.read_text().splitlines()]  # every line is JSON
    access = [line["message"] for line in lines if line["logger"] == "gunicorn.access"]
    assert {"method": "GET", "path": "/healthz", "status": 200}.items() <= access[-1].items()
    assert any(line["logger"] == "gunicorn.error" for line in lines)
    assert "secret-value-123" not in log.read_text()


def test_the_metrics_add_up_the_exchanges_of_every_worker(served):
    port, _log, _process = served

    for _ in range(6):  # a connection each: the sync workers take turns
        assert request(port, "POST", "/oauth2/token", "grant_type=password")[0] == 400
    status, body = request(port, "GET", "/metrics")

    assert status == 200
    families = {family.name: family for family in text_string_to_metric_families(body.decode())}
    refused = [s for s in families["issuer_token_exchanges"].samples if s.labels["outcome"] == "refused"]
    assert sum(sample.value for sample in refused) == 6
    assert "issuer_signing_key_active_age_seconds" in families


def test_sigterm_stops_the_server_cleanly(served):
    _port, _log, process = served

    process.send_signal(signal.SIGTERM)

    assert process.wait(timeout=40) == 0


def test_a_key_encryption_key_that_cannot_open_the_keys_stops_the_master_before_serving(site, tmp_path):
    port = free_port()
    log = tmp_path / "gunicorn.log"
    environment = {**site, "PORT": str(port), "KEY_ENCRYPTION_KEY": secrets.token_urlsafe(32)}

    process = start(environment, log)

    assert process.wait(timeout=START_TIMEOUT) != 0
    assert "KEY_ENCRYPTION_KEY" in log.read_text()
    assert "Booting worker" not in log.read_text()  # (gunicorn.error says it for every worker)
