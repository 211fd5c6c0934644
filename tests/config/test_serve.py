"""The production entry point, ``python -m config.serve``, for real: it becomes gunicorn with the
production configuration, serves /healthz and /readyz with settings from the environment, stops
cleanly on SIGTERM, and refuses development settings."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.serve import CONFIG, serve_command, serve_environment
from tests.support.servers import free_port
from tests.support.settings import PRODUCTION

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> dict[str, str]:
    """A production environment (plain http on loopback) on a migrated SQLite file with one key."""
    var = tmp_path_factory.mktemp("serve")
    environment = {
        "PATH": os.environ["PATH"],
        **PRODUCTION,
        "HTTPS": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "BIND_HOST": "127.0.0.1",
        "VAR_DIR": str(var),
        "DATABASE_URL": f"sqlite:///{var / 'db.sqlite3'}",
        "WEB_CONCURRENCY": "2",
    }
    manage_environment = {**environment, "DJANGO_SETTINGS_MODULE": "config.settings"}
    for command in (["migrate", "-v0"], ["rotate_keys"]):
        subprocess.run(  # noqa: S603 - our interpreter and manage.py
            [sys.executable, "manage.py", *command],
            cwd=ROOT,
            env=manage_environment,
            check=True,
            capture_output=True,
        )
    return environment


def get(port: int, path: str) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


@pytest.fixture
def served(site, tmp_path):
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "config.serve"],
            cwd=ROOT,
            env={**site, "PORT": str(port)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            if get(port, "/healthz")[0] == 200:
                break
        except OSError:
            pass
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)  # polling a child's start, not a clock under test
    yield port, process, log
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)


def test_it_serves_liveness_and_readiness_with_production_settings(served):
    port, _process, _log = served

    assert get(port, "/healthz") == (200, {"status": "ok"})
    status, readiness = get(port, "/readyz")

    assert status == 200
    assert readiness["checks"] == {"database": "ok", "signing_key": "ok", "key_store": "ok"}


def test_the_process_it_started_is_the_gunicorn_master_so_sigterm_stops_it_cleanly(served, site):
    port, process, log = served

    # The pid we started runs gunicorn now (named "gunicorn: master" where setproctitle is installed).
    command_line = Path(f"/proc/{process.pid}/cmdline").read_bytes()
    assert b"gunicorn" in command_line
    assert b"config.serve" not in command_line
    process.send_signal(signal.SIGTERM)

    assert process.wait(timeout=40) == 0
    assert any(json.loads(line)["logger"] == "gunicorn.error" for line in log.read_text().splitlines())
    # The workers' metrics went to a directory of this port's own under VAR_DIR.
    assert (Path(site["VAR_DIR"]) / "metrics" / str(port)).is_dir()


def test_it_refuses_development_settings_before_starting_anything(site):
    completed = subprocess.run(
        [sys.executable, "-m", "config.serve"],
        cwd=ROOT,
        env={**site, "DEBUG": "true", "PORT": str(free_port())},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert completed.returncode != 0
    assert completed.stderr.strip().splitlines() == [
        "config.serve: DEBUG: config.serve is the production server; use `make run` for development"
    ]
    assert completed.stdout == ""  # gunicorn never started: it would have logged its start


def test_the_command_line_is_gunicorn_with_the_production_configuration_then_the_arguments():
    command = serve_command(["--workers", "4"], python="/venv/bin/python")

    assert command == [
        "/venv/bin/python",
        "-m",
        "gunicorn",
        "--config",
        str(CONFIG),
        "--workers",
        "4",
        "config.wsgi:application",
    ]


def test_each_port_gets_its_own_metrics_directory_unless_one_is_given(tmp_path):
    base = {"VAR_DIR": str(tmp_path), "PORT": "8001"}

    assert serve_environment(base)["PROMETHEUS_MULTIPROC_DIR"] == str(tmp_path / "metrics" / "8001")
    given = serve_environment({**base, "PROMETHEUS_MULTIPROC_DIR": "/run/issuer/metrics"})
    assert given["PROMETHEUS_MULTIPROC_DIR"] == "/run/issuer/metrics"
    assert given["DJANGO_SETTINGS_MODULE"] == "config.settings"


@pytest.mark.parametrize(
    ("variable", "value"), [("DEBUG", "true"), ("DEBUG", "perhaps"), ("PORT", "0"), ("PORT", "http")]
)
def test_a_refused_value_names_its_variable(variable, value):
    with pytest.raises(ImproperlyConfigured, match=variable):
        serve_environment({variable: value})
