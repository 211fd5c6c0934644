"""On PostgreSQL a warm exchange reads no policy table, and any committed change reaches it at once.

Every change here is committed by another thread (its own connection, as another instance would)
or by ``import_policy``, and seen by the next exchanges of this process once the notification
arrives: each test polls until the answer changes, with a deadline, and never sleeps on a timing.
"""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from authz import selectors
from authz.models import Grant, Permission, Role, Tenant
from authz.snapshot_cache import exchange_inputs_cached
from lib.table_changes import table_changes
from tests import fake_entra as entra
from tests.support.exchange import GROUP
from tests.support.table_changes import in_other_thread, listening, policy_queries, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def cached(require_postgres, settings):
    """The cache on, this process listening."""
    settings.POLICY_CACHE = True
    listening()


def warm(exchange) -> dict:
    """Fill the cache and check the next exchange is served from it; the answer's body."""
    assert exchange().status_code == 200
    with CaptureQueriesContext(connection) as captured:
        response = exchange()
    assert response.status_code == 200, response.content
    assert policy_queries(captured) == []
    return response.json()


def test_a_warm_exchange_reads_no_policy_table(cached, exchange, orders_policy):
    orders_policy.grant(orders_policy.editor, orders_policy.acme)
    assert warm(exchange)["scope"] == "orders.export orders.read orders.write"


def test_the_same_groups_in_another_order_share_an_entry(cached, orders_policy):
    orders_policy.grant(orders_policy.editor, orders_policy.acme, subject=GROUP, kind="group")
    other = "88888888-8888-4888-8888-888888888888"
    query = {
        "provider": entra.TENANT_ID,
        "user_id": entra.OID,
        "tenant_slug": None,
        "audience": "api://orders",
    }
    first = exchange_inputs_cached(**query, group_ids=[GROUP, other])
    with CaptureQueriesContext(connection) as captured:
        again = exchange_inputs_cached(**query, group_ids=(other, GROUP, other))
    assert policy_queries(captured) == []
    assert again == first


def scope_or_error(response) -> str:
    body = response.json()
    return body.get("scope", body.get("error"))


def grant_revoked(policy) -> None:
    Grant.objects.filter(subject_id=entra.OID).delete()


def tenant_suspended(policy) -> None:
    tenant = Tenant.objects.get(slug="acme")
    tenant.status = Tenant.Status.SUSPENDED
    tenant.save()


def role_changed(policy) -> None:
    Role.objects.get(slug="editor").permissions.remove(Permission.objects.get(code="orders.write"))


def feature_removed(policy) -> None:
    Tenant.objects.filter(slug="acme").update(features=[])


def audience_narrowed(policy) -> None:
    policy.orders.permissions.remove(Permission.objects.get(code="orders.export"))


def permission_gated(policy) -> None:
    Permission.objects.filter(code="orders.read").update(requires_feature="reports")


@pytest.mark.parametrize(
    ("change", "after"),
    [
        (grant_revoked, "invalid_request"),
        (tenant_suspended, "invalid_request"),
        (role_changed, "orders.export orders.read"),
        (feature_removed, "orders.read orders.write"),
        (audience_narrowed, "orders.read orders.write"),
        (permission_gated, "orders.export orders.write"),
    ],
)
def test_a_change_through_the_orm_reaches_the_next_exchanges(cached, exchange, orders_policy, change, after):
    orders_policy.grant(orders_policy.editor, orders_policy.acme)
    assert warm(exchange)["scope"] == "orders.export orders.read orders.write"

    in_other_thread(lambda: change(orders_policy))

    wait_until(lambda: scope_or_error(exchange()) == after, f"answering {after!r}")


@pytest.mark.parametrize(
    ("statement", "after"),
    [
        ("DELETE FROM authz_grant", "invalid_request"),
        ("UPDATE authz_tenant SET status = 'suspended' WHERE slug = 'acme'", "invalid_request"),
        ("DELETE FROM authz_role_permissions WHERE permission_id ="
         " (SELECT id FROM authz_permission WHERE code = 'orders.export')", "orders.read orders.write"),
        ("TRUNCATE authz_grant", "invalid_request"),
    ],
)  # fmt: skip
def test_a_change_in_raw_sql_reaches_the_next_exchanges(cached, exchange, orders_policy, statement, after):
    orders_policy.grant(orders_policy.editor, orders_policy.acme)
    warm(exchange)

    def run() -> None:
        with connection.cursor() as cursor:
            cursor.execute(statement)

    in_other_thread(run)

    wait_until(lambda: scope_or_error(exchange()) == after, f"answering {after!r}")


def test_a_tenant_suspended_by_import_policy_reaches_the_next_exchanges(
    cached, exchange, orders_policy, tmp_path
):
    orders_policy.grant(orders_policy.editor, orders_policy.acme)
    warm(exchange)
    policy = tmp_path / "policy.json"
    policy.write_text(
        json.dumps(
            {"tenants": [{"slug": "acme", "name": "Acme", "status": "suspended", "features": ["exports"]}]}
        )
    )

    in_other_thread(lambda: call_command("import_policy", str(policy), stdout=io.StringIO()))

    wait_until(lambda: scope_or_error(exchange()) == "invalid_request", "refusing")


def test_a_grant_given_by_import_policy_reaches_the_next_exchanges(cached, exchange, orders_policy, tmp_path):
    orders_policy.grant(orders_policy.viewer, orders_policy.acme)
    assert warm(exchange)["scope"] == "orders.read"
    policy = tmp_path / "policy.json"
    policy.write_text(
        json.dumps(
            {"grants": [{"tenant": "acme", "role": "editor", "user": entra.OID, "provider": entra.TENANT_ID}]}
        )
    )

    in_other_thread(lambda: call_command("import_policy", str(policy), stdout=io.StringIO()))

    wait_until(
        lambda: scope_or_error(exchange()) == "orders.export orders.read orders.write", "granting editor"
    )


def test_a_change_committed_while_a_snapshot_is_read_is_not_kept(
    cached, exchange, orders_policy, monkeypatch
):
    # The read starts before the revocation commits and ends after its notification arrived: that
    # one answer may still grant (the read saw the grant), but it must not be kept for the next.
    orders_policy.grant(orders_policy.editor, orders_policy.acme)
    read = selectors.exchange_inputs_get
    revoked: list[bool] = []

    def read_then_revoke(**query):
        inputs = read(**query)
        if not revoked:
            revoked.append(True)
            before = table_changes.generation()
            in_other_thread(lambda: Grant.objects.filter(subject_id=entra.OID).delete())
            wait_until(lambda: table_changes.generation() not in (None, before), "notified")
        return inputs

    monkeypatch.setattr(selectors, "exchange_inputs_get", read_then_revoke)

    assert exchange().status_code == 200
    assert scope_or_error(exchange()) == "invalid_request"


def test_a_grant_change_inside_the_callers_transaction_is_seen_by_its_next_exchange(
    cached, exchange, orders_policy
):
    grant = orders_policy.grant(orders_policy.viewer, orders_policy.acme)
    assert warm(exchange)["scope"] == "orders.read"
    with transaction.atomic():
        grant.role = orders_policy.editor
        grant.save()
        # Not committed, so not notified: inside the transaction the exchange reads the database.
        assert scope_or_error(exchange()) == "orders.export orders.read orders.write"
        transaction.set_rollback(True)
    wait_until(lambda: scope_or_error(exchange()) == "orders.read", "back to viewer")
