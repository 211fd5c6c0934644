"""Faults, for real: the app in a gunicorn subprocess while PostgreSQL or the broker is unreachable.

PostgreSQL is reached through a TCP proxy that the test cuts (drops every connection, refuses new
ones) and restores, so the server meets a real outage: psycopg errors, dead pooled connections,
reconnects. Servers started while the fake Entra is down verify with the keys an earlier server
stored, up to ENTRA_KEYS_MAX_STALE. Other faults are covered where they live: Entra's JWKS answering
5xx, garbage or timing out in tests/accounts/test_provider_keys.py and test_entra.py; a wrong
KEY_ENCRYPTION_KEY refusing to start in tests/keys/test_checks.py.
"""

from __future__ import annotations

import selectors
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings as django_settings

from tests.fake_entra import DOWN
from tests.support.servers import app_database_prepare, app_environment, app_server, free_port

FAULTS_DATABASE = "issuer_faults"


# --- a cuttable TCP proxy ----------------------------------------------------------------------
class CuttableProxy:
    """Forwards 127.0.0.1:<port> to ``upstream``; ``cut`` drops every connection and refuses new ones."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        probe = socket.create_server(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.restore()

    def restore(self) -> None:
        """Listen again on the same port (SO_REUSEADDR) and forward new connections."""
        listener = socket.create_server(("127.0.0.1", self.port))
        listener.settimeout(0.1)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """Stop listening (connections are refused) and close every forwarded connection."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            open_sockets, self._sockets = self._sockets, set()
        for sock in open_sockets:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            client.settimeout(None)
            server.settimeout(None)
            with self._lock:
                self._sockets |= {client, server}
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    def _pump(self, one: socket.socket, other: socket.socket) -> None:
        """Copy bytes both ways until either side closes."""
        selector = selectors.DefaultSelector()
        selector.register(one, selectors.EVENT_READ, other)
        selector.register(other, selectors.EVENT_READ, one)
        try:
            while True:
                for key, _ in selector.select():
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    if not data:
                        return
                    key.data.sendall(data)
        except (OSError, ValueError):
            return
        finally:
            selector.close()
            for sock in (one, other):
                with suppress(OSError):
                    sock.close()


def eventually(probe, *, timeout: float = 15.0):
    """Poll ``probe`` until it returns a truthy value (a server reconnecting), or fail."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.2)


# --- PostgreSQL stops ---------------------------------------------------------------------------
@pytest.fixture
def faults_database(require_postgres) -> Iterator[dict]:
    """A database of our own (issuer_faults) on the test run's PostgreSQL server, dropped after."""
    import psycopg

    database = django_settings.DATABASES["default"]
    server = {
        "host": database.get("HOST") or "127.0.0.1",
        "port": int(database.get("PORT") or 5432),
        "user": database.get("USER") or "postgres",
        "password": database.get("PASSWORD") or None,
    }

    def admin(sql: str) -> None:
        with psycopg.connect(dbname="postgres", autocommit=True, **server) as connection:
            connection.execute(sql)

    admin(f"DROP DATABASE IF EXISTS {FAULTS_DATABASE} WITH (FORCE)")
    admin(f"CREATE DATABASE {FAULTS_DATABASE}")
    yield server
    admin(f"DROP DATABASE IF EXISTS {FAULTS_DATABASE} WITH (FORCE)")


def test_a_database_outage_answers_503_in_the_rfc_shape_and_recovers(faults_database, fake_entra, tmp_path):
    server = faults_database
    proxy = CuttableProxy((server["host"], server["port"]))
    password = f":{server['password']}" if server["password"] else ""
    env = app_environment(
        database_url=f"postgres://{server['user']}{password}@127.0.0.1:{proxy.port}/{FAULTS_DATABASE}",
        var_dir=tmp_path,
        authority=fake_entra.authority,
    )
    app_database_prepare(env, tmp_path)
    token = fake_entra.mint()

    with app_server(env, tmp_path / "server.log") as app:
        assert app.exchange(token).status == 200
        assert app.get("/readyz").status == 200

        proxy.cut()
        ready = app.get("/readyz")
        assert ready.status == 503
        assert ready.json()["checks"]["database"] == "unreachable"
        refused = app.exchange(token)
        assert refused.status == 503, refused.body
        assert refused.json() == {
            "error": "temporarily_unavailable",
            "error_description": "the service is temporarily unavailable; retry later",
        }
        assert refused.headers["Retry-After"] == "5"
        assert refused.headers["Cache-Control"] == "no-store"
        assert app.get("/healthz").status == 200  # liveness does not restart a worker for an outage

        proxy.restore()
        eventually(lambda: app.get("/readyz").status == 200)
        recovered = eventually(lambda: (answer := app.exchange(token)).status == 200 and answer)
        assert recovered.json()["token_type"] == "Bearer"

    log = app.log.read_text()
    assert "the database failed (OperationalError); answered 503" in log
    assert "Internal Server Error" not in log
    assert token not in log
    proxy.cut()


# --- the broker is down ------------------------------------------------------------------------
def test_exchanges_are_unaffected_when_the_broker_is_down(fake_entra, tmp_path):
    closed = free_port()  # nothing listens here: every connection to the broker is refused
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", closed), timeout=1)
    env = app_environment(
        database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        var_dir=tmp_path,
        authority=fake_entra.authority,
        CELERY_BROKER_URL=f"redis://127.0.0.1:{closed}/0",
    )
    app_database_prepare(env, tmp_path)

    with app_server(env, tmp_path / "server.log") as app:
        for _ in range(3):
            started = time.perf_counter()
            answer = app.exchange(fake_entra.mint())
            assert answer.status == 200, answer.body
            # Nothing waits on the broker: no connect timeout, no retry loop in the request path.
            assert time.perf_counter() - started < 2.0
        assert app.get("/readyz").status == 200
        assert app.get("/.well-known/jwks.json").status == 200


# --- Entra is down when a worker starts ----------------------------------------------------------
def test_a_server_started_while_entra_is_down_exchanges_with_the_stored_keys(fake_entra, tmp_path):
    database = tmp_path / "db.sqlite3"
    env = app_environment(
        database_url=f"sqlite:///{database}", var_dir=tmp_path, authority=fake_entra.authority
    )
    app_database_prepare(env, tmp_path)
    with app_server(env, tmp_path / "first.log") as app:
        assert app.exchange(fake_entra.mint()).status == 200  # fetched from Entra and stored

    fake_entra.mode = DOWN
    with app_server(env, tmp_path / "restarted.log") as app:
        answer = app.exchange(fake_entra.mint())
        assert answer.status == 200, answer.body
    assert "verified with the keys stored" in app.log.read_text()

    with sqlite3.connect(database) as db:  # a day and a minute pass: beyond ENTRA_KEYS_MAX_STALE
        stale = datetime.now(UTC) - timedelta(days=1, minutes=1)
        db.execute(
            "UPDATE accounts_providerkeyset SET fetched_at = ?", (stale.strftime("%Y-%m-%d %H:%M:%S"),)
        )
    with app_server(env, tmp_path / "beyond.log") as app:
        refused = app.exchange(fake_entra.mint())
        assert refused.status == 503, refused.body
        assert refused.json() == {
            "error": "temporarily_unavailable",
            "error_description": "the identity provider's keys are unavailable; retry later",
        }
        assert int(refused.headers["Retry-After"]) >= 1
        assert refused.headers["Cache-Control"] == "no-store"
    assert "Internal Server Error" not in app.log.read_text()
