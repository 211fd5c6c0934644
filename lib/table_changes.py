"""Per-process word from PostgreSQL that a table a cache copies has changed (LISTEN/NOTIFY).

Triggers (authz migration 0006) send ``NOTIFY table_changed, '<table>'`` when a statement writes to
one of the tables the exchange caches; the notification reaches every listening process when the
transaction commits. Each process holds one listening connection of its own, in a daemon thread
started on first use, never before a fork: a process that finds it was forked drops what it
inherited (without closing the parent's socket) and starts its own.

A cache may trust what it copied only while ``generation()`` answers a number, and only under
that number: it moves on every notification, every lost connection and every reconnection (which
also tells subscribers that anything may have changed, since notifications sent while nobody
listened are lost). It answers ``None`` (read the database) until the connection is confirmed
listening, from the moment it breaks, and whenever no heartbeat round trip has come back for
``trust_seconds``: a connection that hangs without breaking (a network partition) stops being
trusted within that bound, since a notification committed before a heartbeat reaches us before
the heartbeat's answer.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg

logger = logging.getLogger(__name__)

CHANNEL = "table_changed"
# Subscribers get a table name, or this when every table may have changed (connection lost/back).
EVERYTHING: str | None = None

Subscriber = Callable[[str | None], None]


class TableChangeListener:
    """One LISTEN connection per process on ``channel``; see the module docstring."""

    heartbeat_seconds = 0.2
    trust_seconds = 0.6
    # Waits between reconnection attempts (the last repeats); reset once a connection listens.
    retry_delays: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
    clock: Callable[[], float] = time.monotonic

    def __init__(self, *, channel: str = CHANNEL, connect: Callable[[], psycopg.Connection] | None = None):
        self.channel = channel
        self._connect = connect or django_listener_connect
        self._subscribers: list[Subscriber] = []
        self._start_lock = threading.Lock()
        self._pid: int | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._connection: psycopg.Connection | None = None
        # (generation, listening, last confirmed heartbeat sent at): replaced whole, written by the
        # thread, or by start() and stop() while no thread runs.
        self._state: tuple[int, bool, float] = (0, False, 0.0)

    # --- readers ------------------------------------------------------------------------------
    def generation(self) -> int | None:
        """The current generation while notifications are trusted, else ``None``; starts the thread."""
        if self._pid != os.getpid():
            self.start()
            return None
        generation, listening, confirmed = self._state
        if not listening or self.clock() - confirmed > self.trust_seconds:
            return None
        return generation

    @property
    def listening(self) -> bool:
        return self._pid == os.getpid() and self._state[1]

    def subscribe(self, subscriber: Subscriber) -> None:
        """Call ``subscriber(table)`` on each change (``EVERYTHING``: anything may have changed)."""
        self._subscribers.append(subscriber)

    # --- life cycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start this process's listening thread unless it runs (a forked child starts its own)."""
        with self._start_lock:
            pid = os.getpid()
            if self._pid == pid:
                return
            # Inherited from the parent: its thread does not exist here and its socket is the
            # parent's. Forget both; closing that connection would end the parent's session.
            self._connection = None
            self._stopping = threading.Event()
            self._moved(listening=False, confirmed=0.0)
            self._thread = threading.Thread(
                target=self._run, args=(self._stopping,), name="table-change-listener", daemon=True
            )
            self._pid = pid
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread and close its connection (tests, and before a database is dropped)."""
        with self._start_lock:
            if self._pid != os.getpid():
                return
            self._stopping.set()
            thread, self._thread, self._pid = self._thread, None, None
        if thread is not None:
            thread.join(timeout)
        self._moved(listening=False, confirmed=0.0)

    def forked(self) -> None:
        """In a forked child: nothing of the parent's thread is usable, not even its locks."""
        self._start_lock = threading.Lock()
        self._pid = None
        self._thread = None
        self._connection = None

    @property
    def backend_pid(self) -> int | None:
        """The PostgreSQL backend of this process's listening connection, if connected."""
        connection = self._connection
        return None if connection is None or self._pid != os.getpid() else connection.info.backend_pid

    # --- the thread ---------------------------------------------------------------------------
    def _run(self, stopping: threading.Event) -> None:
        attempt = 0
        while not stopping.is_set():
            if self._session(stopping):
                attempt = 0
            if stopping.wait(self.retry_delays[min(attempt, len(self.retry_delays) - 1)]):
                break
            attempt += 1

    def _session(self, stopping: threading.Event) -> bool:
        """Connect, listen and wait for notifications until the connection fails; True if it listened."""
        try:
            connection = self._connect()
        except Exception as error:  # any failure to connect means: no channel, read the database
            logger.warning("table-change listener: cannot connect (%s); caches off", type(error).__name__)
            return False
        self._connection = connection
        listened = False
        try:
            connection.execute(f"LISTEN {self.channel}")
            # Listening from here on; what was cached before is suspect (changes while nobody listened).
            sent = self.clock()
            connection.execute("SELECT 1")
            self._moved(listening=True, confirmed=sent)
            listened = True
            while not stopping.is_set():
                for notification in connection.notifies(timeout=self.heartbeat_seconds):
                    self._changed(notification.payload)
                sent = self.clock()
                connection.execute("SELECT 1")
                # Notifications that came before the heartbeat's answer first, then the confirmation.
                for notification in connection.notifies(timeout=0):
                    self._changed(notification.payload)
                generation, listening, _confirmed = self._state
                self._state = (generation, listening, sent)
        except Exception as error:  # broken, terminated or anything unforeseen: caches off, reconnect
            if not stopping.is_set():
                logger.warning(
                    "table-change listener: connection lost (%s); caches off until it is back",
                    type(error).__name__,
                )
        finally:
            self._connection = None
            self._moved(listening=False, confirmed=0.0)
            _close_quietly(connection)
        return listened

    def _changed(self, table: str) -> None:
        generation, listening, confirmed = self._state
        self._state = (generation + 1, listening, confirmed)
        self._tell(table)

    def _moved(self, *, listening: bool, confirmed: float) -> None:
        generation = self._state[0]
        self._state = (generation + 1, listening, confirmed)
        self._tell(EVERYTHING)

    def _tell(self, table: str | None) -> None:
        for subscriber in list(self._subscribers):
            try:
                subscriber(table)
            except Exception:  # a subscriber's bug must not stop the invalidation of the others
                logger.exception("table-change listener: a subscriber failed")


def _close_quietly(connection: psycopg.Connection) -> None:
    try:
        connection.close()
    except Exception:  # closing a broken connection: nothing left to do
        logger.debug("table-change listener: closing the connection failed", exc_info=True)


def django_listener_connect() -> psycopg.Connection:
    """A new autocommit connection to Django's default database, named so operators can find it."""
    from django.db import connections

    params: dict[str, Any] = connections["default"].get_connection_params()
    for name in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(name, None)
    params.update(
        autocommit=True,
        application_name=f"issuer table-change listener {os.getpid()}",
        # A peer that vanished without closing (a partition) is noticed by TCP within seconds; the
        # heartbeat has already stopped trusting the channel by then.
        keepalives=1,
        keepalives_idle=5,
        keepalives_interval=2,
        keepalives_count=2,
    )
    params.setdefault("connect_timeout", 5)
    return psycopg.connect(**params)


table_changes = TableChangeListener()
# A lock held by another thread at a fork stays held in the child: give the child fresh ones (the
# pid check in generation() then starts its own listener).
os.register_at_fork(after_in_child=table_changes.forked)
