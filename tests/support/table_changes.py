"""What the policy-cache tests share: waiting on a condition, another thread's commits, the listener.

Waiting polls a condition until a deadline and fails with what it waited for: a notification's
delay is never asserted, only that it arrives (the deadline is generous for a loaded machine).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import psycopg
from django.db import connection, connections

from authz.snapshot_cache import snapshot_cache
from lib.table_changes import table_changes

T = TypeVar("T")
DEADLINE_SECONDS = 10.0


def wait_until(condition: Callable[[], T], what: str, *, seconds: float = DEADLINE_SECONDS) -> T:
    """Poll ``condition`` until it returns something true (returned), or fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        result = condition()
        if result:
            return result
        assert time.monotonic() < deadline, f"still not {what} after {seconds} s"
        time.sleep(0.01)  # polling a condition, not the clock under test


def in_other_thread(work: Callable[[], T]) -> T:
    """Run ``work`` in a new thread, with its own database connection (committed, then closed)."""
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["result"] = work()
        except BaseException as error:  # re-raised in the caller
            outcome["error"] = error
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome.get("result")  # type: ignore[return-value]


def listening() -> int:
    """This process's listener confirmed (started if needed): its generation."""
    return wait_until(lambda: _generation_plus_one(), "listening") - 1


def _generation_plus_one() -> int:
    generation = table_changes.generation()
    return 0 if generation is None else generation + 1


def listener_reset() -> None:
    """No listener thread and an empty cache: before and after each test that starts one."""
    table_changes.stop()
    snapshot_cache.clear()


def policy_queries(captured: list[dict]) -> list[str]:
    """The captured statements that read the policy tables (a cache hit has none)."""
    return [query["sql"] for query in captured if "authz_" in query["sql"]]


@contextmanager
def admin_connection() -> Iterator[psycopg.Connection]:
    """An autocommit connection to the ``postgres`` database, to act on the test database from outside."""
    params = connection.get_connection_params()
    for name in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(name, None)
    params["dbname"] = "postgres"
    with psycopg.connect(**params, autocommit=True) as admin:
        yield admin


@contextmanager
def connections_refused() -> Iterator[None]:
    """New connections to the test database are refused (ALLOW_CONNECTIONS false) until the block ends."""
    name = connection.settings_dict["NAME"]
    with admin_connection() as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        try:
            yield
        finally:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
