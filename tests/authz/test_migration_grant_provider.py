"""The migrations that give principals and grants their provider, run on rows written before them.

Each test migrates the database back to before them, writes rows with the models of that time, and
migrates forward as a deploy does: with one trusted provider, with several (refused unless
GRANTS_PROVIDER names one), and with none of the rows that need a provider.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.apps.registry import Apps
from django.core.management.base import CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from tests import fake_entra as entra

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("accounts", "0004_alter_user_options"), ("authz", "0004_feature_catalogue")]
AFTER = [("accounts", "0005_principal_provider"), ("authz", "0005_grant_provider")]
FIRST, SECOND = entra.TENANT_ID, entra.SECOND_TENANT_ID
USER, GROUP = "2f0e3b4c-8a1d-4c5e-9f60-7b8c9d0e1f2a", "7d4c1a2b-3e5f-4a6b-8c7d-9e0f1a2b3c4d"

Migrate = Callable[[list[tuple[str, str]]], Apps]


@pytest.fixture
def migrate(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Migrate]:
    """``migrate(targets)`` runs the migrations to ``targets`` and returns the models of that state;
    the database starts before the provider migrations and ends fully migrated again."""
    settings.ENTRA_DEV_DIRECTORY = False
    monkeypatch.delenv("GRANTS_PROVIDER", raising=False)

    def run(targets: list[tuple[str, str]]) -> Apps:
        executor = MigrationExecutor(connection)
        executor.migrate(targets)
        return MigrationExecutor(connection).loader.project_state(targets).apps

    run(BEFORE)
    yield run
    # Back to the latest schema for the tests that follow; rows left by a refused run are bound first.
    settings.ENTRA_TENANT_ID = [FIRST]
    monkeypatch.delenv("GRANTS_PROVIDER", raising=False)
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def rows_before(apps: Apps) -> dict[str, Any]:
    """What a deployment holds before: a principal (tid, oid), a user and a group grant, their history."""
    tenant = apps.get_model("authz", "Tenant").objects.create(slug="acme", name="Acme")
    role = apps.get_model("authz", "Role").objects.create(slug="viewer", name="Viewer")
    grant_model = apps.get_model("authz", "Grant")
    user = grant_model.objects.create(tenant=tenant, role=role, subject_type="user", subject_id=USER)
    group = grant_model.objects.create(tenant=tenant, role=role, subject_type="group", subject_id=GROUP)
    history = apps.get_model("authz", "HistoricalGrant")
    for grant in (user, group):
        history.objects.create(
            id=grant.id,
            tenant_id=tenant.id,
            role_id=role.id,
            subject_type=grant.subject_type,
            subject_id=grant.subject_id,
            reason="",
            created_at=grant.created_at,
            history_date=grant.created_at,
            history_type="+",
        )
    principal = apps.get_model("accounts", "Principal").objects.create(tid=FIRST, oid=USER)
    return {"principal": principal.id, "grants": {user.id, group.id}}


def bound(apps: Apps) -> dict[str, set[tuple[str, str]]]:
    grants = apps.get_model("authz", "Grant").objects.values_list("provider", "subject_id")
    history = apps.get_model("authz", "HistoricalGrant").objects.values_list("provider", "subject_id")
    return {"grants": set(grants), "history": set(history)}


def test_with_one_trusted_directory_existing_grants_and_principals_are_bound_to_it(
    migrate: Migrate, settings: Any
) -> None:
    before = rows_before(migrate(BEFORE))
    settings.ENTRA_TENANT_ID = [FIRST]

    after = migrate(AFTER)

    assert bound(after) == {
        "grants": {(FIRST, USER), (FIRST, GROUP)},
        "history": {(FIRST, USER), (FIRST, GROUP)},
    }
    principal = after.get_model("accounts", "Principal").objects.get()
    assert (principal.id, principal.provider, principal.subject) == (before["principal"], FIRST, USER)
    assert set(after.get_model("authz", "Grant").objects.values_list("id", flat=True)) == before["grants"]


def test_with_several_trusted_providers_it_refuses_to_guess_and_names_what_to_set(
    migrate: Migrate, settings: Any
) -> None:
    rows_before(migrate(BEFORE))
    settings.ENTRA_TENANT_ID = [FIRST, SECOND]

    with pytest.raises(CommandError) as refused:
        migrate(AFTER)

    assert str(refused.value) == (
        "GRANTS_PROVIDER: the existing grants must be bound to one identity provider and several are "
        f"trusted ({FIRST}, {SECOND}); set GRANTS_PROVIDER to the one whose users and groups they were "
        "given to, then migrate again"
    )
    # Nothing of the grants' migration stayed: the grants are as they were, without a provider.
    applied = MigrationExecutor(connection).loader.applied_migrations
    assert ("authz", "0005_grant_provider") not in applied
    assert ("accounts", "0005_principal_provider") in applied


def test_with_several_trusted_providers_grants_provider_chooses_the_one(
    migrate: Migrate, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows_before(migrate(BEFORE))
    settings.ENTRA_TENANT_ID = [FIRST, SECOND]
    monkeypatch.setenv("GRANTS_PROVIDER", SECOND.upper())

    after = migrate(AFTER)

    assert bound(after)["grants"] == {(SECOND, USER), (SECOND, GROUP)}
    assert bound(after)["history"] == {(SECOND, USER), (SECOND, GROUP)}
    # Principals keep their own directory: each came with one.
    assert after.get_model("accounts", "Principal").objects.get().provider == FIRST


def test_grants_provider_must_name_a_trusted_provider(
    migrate: Migrate, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows_before(migrate(BEFORE))
    settings.ENTRA_TENANT_ID = [FIRST, SECOND]
    monkeypatch.setenv("GRANTS_PROVIDER", entra.UNTRUSTED_TENANT_ID)

    with pytest.raises(
        CommandError, match=f"GRANTS_PROVIDER: '{entra.UNTRUSTED_TENANT_ID}' is not a trusted"
    ):
        migrate(AFTER)


def test_without_grants_nothing_is_asked_whatever_is_trusted(migrate: Migrate, settings: Any) -> None:
    migrate(BEFORE)
    settings.ENTRA_TENANT_ID = [FIRST, SECOND]

    after = migrate(AFTER)

    assert bound(after) == {"grants": set(), "history": set()}
