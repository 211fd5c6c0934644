"""Fixtures of the portal tests: tenants and roles as an admin creates them, and alice, acme's tenant admin.

The exchange's fixtures (``orders_policy``, ``signing_key``, ``exchange``) are in tests/conftest.py:
the metrics and logging tests drive exchanges too.
"""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import User
from authz.models import Grant, Permission, Role, Tenant
from authz.portal import tenant_administrator_add
from tests import fake_entra as entra
from tests.support.portal import guid


@pytest.fixture(autouse=True)
def _trusted_providers(settings: Any) -> None:
    """The fake Entra's two directories are trusted, as in the exchange's tests: grants and policy
    files name their provider (with one trusted provider they could leave it out)."""
    settings.ENTRA_TENANT_ID = [entra.TENANT_ID, entra.SECOND_TENANT_ID]
    settings.ENTRA_DEV_DIRECTORY = False


@pytest.fixture
def fast_password_hashing(settings: Any) -> None:
    """The signed-in users' passwords are not under test; hashing them slowly only costs time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def acme() -> Tenant:
    return Tenant.objects.create(slug="acme", name="Acme Corp")


@pytest.fixture
def globex() -> Tenant:
    return Tenant.objects.create(slug="globex", name="Globex Inc")


@pytest.fixture
def beta() -> Tenant:
    return Tenant.objects.create(slug="beta", name="Beta Ltd", status=Tenant.Status.SUSPENDED)


@pytest.fixture
def viewer() -> Role:
    role = Role.objects.create(slug="viewer", name="Viewer")
    role.permissions.add(Permission.objects.create(code="orders.read"))
    return role


@pytest.fixture
def beta_auditor(beta: Tenant) -> Role:
    return Role.objects.create(slug="auditor", name="Auditor", tenant=beta)


@pytest.fixture
def globex_auditor(globex: Tenant) -> Role:
    return Role.objects.create(slug="auditor", name="Auditor", tenant=globex)


@pytest.fixture
def alice(acme: Tenant, admin_user: User) -> User:
    """A tenant admin of acme only."""
    user = User.objects.create_user(username="alice", password="x" * 20)
    tenant_administrator_add(user=user, tenant=acme, by=admin_user)
    return user


@pytest.fixture
def alice_client(client: Any, alice: User) -> Any:
    client.force_login(alice)
    return client


@pytest.fixture
def acme_grant(acme: Tenant, viewer: Role) -> Grant:
    return Grant.objects.create(
        tenant=acme, role=viewer, subject_type="user", provider=entra.TENANT_ID, subject_id=guid()
    )
