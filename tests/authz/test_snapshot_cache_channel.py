"""The notification channel: triggers on every cached table, a lost connection, forked workers, keys.

Losing the channel must fall back to reading the database, never to serving what was cached; a
gunicorn master that preloads the app must not listen (its workers each do); a signing key changed
in the database stops signing here when its notification arrives.
"""

from __future__ import annotations

import multiprocessing
import os

import psycopg
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from authz import selectors
from authz.models import Grant
from keys import engine
from keys.models import SigningKey
from keys.services import active_signer_cache, signing_key_rotate
from lib.table_changes import CHANNEL, table_changes
from tests import fake_entra as entra
from tests.support.servers import app_environment, app_server
from tests.support.table_changes import (
    admin_connection,
    connections_refused,
    in_other_thread,
    listening,
    policy_queries,
    wait_until,
)

pytestmark = pytest.mark.django_db(transaction=True)

LISTENERS = (
    "SELECT application_name FROM pg_stat_activity"
    " WHERE datname = current_database() AND application_name LIKE 'issuer table-change listener %%'"
)


@pytest.fixture
def cached(require_postgres, settings):
    settings.POLICY_CACHE = True
    listening()


def cached_tables() -> set[str]:
    """Every table the exchange's snapshot reads (the selector's own list) and the signing keys."""
    return {name.strip('"') for name in selectors._tables().values()} | {SigningKey._meta.db_table}


def test_every_table_the_snapshot_reads_notifies_on_every_kind_of_write(require_postgres):
    params = connection.get_connection_params()
    for name in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(name, None)
    with psycopg.connect(**params, autocommit=True) as listener:
        listener.execute(f"LISTEN {CHANNEL}")
        for statement in ("UPDATE {} SET id = id WHERE false", "DELETE FROM {} WHERE false"):
            with connection.cursor() as cursor:
                for table in sorted(cached_tables()):
                    cursor.execute(statement.format(f'"{table}"'))
            told = set()
            for notification in listener.notifies(timeout=10, stop_after=len(cached_tables())):
                told.add(notification.payload)
            assert told == cached_tables(), statement


def test_a_killed_listener_connection_makes_exchanges_read_the_database_until_it_is_back(
    cached, exchange, orders_policy
):
    orders_policy.grant(orders_policy.editor, orders_policy.acme)
    assert exchange().status_code == 200
    with CaptureQueriesContext(connection) as captured:
        assert exchange().status_code == 200
    assert policy_queries(captured) == []

    with connections_refused():  # the listener cannot come back until the block ends
        with admin_connection() as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [table_changes.backend_pid])
        wait_until(lambda: table_changes.generation() is None, "off once the connection broke")
        for _ in range(3):
            with CaptureQueriesContext(connection) as captured:
                assert exchange().status_code == 200
            assert policy_queries(captured), "served from the cache without a channel"
        # Nobody listens: this change is notified to no one, yet the very next exchange sees it.
        Grant.objects.filter(subject_id=entra.OID).delete()
        assert exchange().json()["error"] == "invalid_request"
        assert table_changes.generation() is None

    listening()
    assert exchange().json()["error"] == "invalid_request"  # nothing from before the outage
    orders_policy.grant(orders_policy.editor, orders_policy.acme)
    wait_until(lambda: exchange().status_code == 200, "granting again")
    with CaptureQueriesContext(connection) as captured:
        assert exchange().status_code == 200
    assert policy_queries(captured) == []  # and cached again


def test_before_the_listener_is_confirmed_exchanges_read_the_database(
    require_postgres, settings, exchange, orders_policy
):
    settings.POLICY_CACHE = True
    orders_policy.grant(orders_policy.editor, orders_policy.acme)
    with connections_refused():  # the listener starts with the first exchange and cannot connect
        for _ in range(3):
            with CaptureQueriesContext(connection) as captured:
                assert exchange().status_code == 200
            assert policy_queries(captured)
        assert table_changes.generation() is None


def test_a_forked_child_listens_for_itself_and_leaves_the_parents_connection_alone(cached):
    # What a child inherits (a listening state, a connection's socket) is the parent's: the child
    # must neither trust the state nor close the socket, which would end the parent's session.
    parent = table_changes.backend_pid
    context = multiprocessing.get_context("fork")
    answers = context.Queue()

    def child() -> None:
        answers.put(table_changes.generation())
        listening()
        answers.put(table_changes.backend_pid)

    process = context.Process(target=child)
    process.start()
    try:
        first, own = answers.get(timeout=30), answers.get(timeout=30)
    finally:
        process.join(30)
    assert first is None  # not the parent's trust
    assert own not in (None, parent)
    assert table_changes.backend_pid == parent
    assert listening() is not None


def test_a_signing_key_revoked_in_the_database_stops_signing_when_notified(cached, signing_key, freeze_clock):
    # The re-check interval never passes here (frozen clock): only the notification can move it.
    freeze_clock(active_signer_cache, at=1000.0)
    old = active_signer_cache.get().kid
    successor = signing_key_rotate(force=True).created[0]
    assert active_signer_cache.get().kid == old

    def revoke_and_activate() -> None:
        SigningKey.objects.filter(kid=old).update(phase=engine.REVOKED)
        SigningKey.objects.filter(kid=successor).update(phase=engine.ACTIVE)

    in_other_thread(revoke_and_activate)

    wait_until(lambda: active_signer_cache.get().kid == successor, "signing with the successor")


def test_gunicorn_workers_listen_for_themselves_and_honour_a_revocation(
    require_postgres, fake_entra, orders_policy, signing_key, tmp_path
):
    # The preloading master never exchanges, so it never listens; each worker starts its own
    # listener with its first exchange, and a revocation committed here reaches it.
    orders_policy.grant(orders_policy.editor, orders_policy.acme)
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env = app_environment(
        database_url=url, var_dir=tmp_path, authority=fake_entra.authority, POLICY_CACHE="on"
    )
    with app_server(env, tmp_path / "server.log", "--preload") as server:
        assert server.exchange(fake_entra.mint()).status == 200

        def listener_pids() -> set[int]:
            with connection.cursor() as cursor:
                cursor.execute(LISTENERS)
                return {int(name.rsplit(" ", 1)[1]) for (name,) in cursor.fetchall()}

        pids = wait_until(listener_pids, "a worker listening")
        assert server.process.pid not in pids
        assert os.getpid() not in pids
        assert server.exchange(fake_entra.mint()).status == 200

        Grant.objects.filter(tenant=orders_policy.acme).delete()

        wait_until(lambda: server.exchange(fake_entra.mint()).status == 400, "the worker refusing")
