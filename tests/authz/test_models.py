"""The models' own validation (``clean``), which the portal's forms run: the shared role and feature rules."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from authz.models import Feature, Grant, Permission, Role, Tenant
from tests import fake_entra as entra

pytestmark = pytest.mark.django_db

USER_ID = "2f0e3b4c-8a1d-4c5e-9f60-7b8c9d0e1f2a"


def messages(instance) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        instance.clean()
    return caught.value.message_dict


def test_a_tenant_feature_must_be_in_the_catalogue_once_there_is_one():
    Tenant(slug="acme", name="Acme", features=["exprots"]).clean()  # no catalogue yet: a free label
    Feature.objects.create(code="exports")

    assert messages(Tenant(slug="acme", name="Acme", features=["exprots"])) == {
        "features": ["exprots: not in the feature catalogue (add it under Features first)."]
    }
    Tenant(slug="acme", name="Acme", features=["exports"]).clean()


def test_a_required_feature_must_be_in_the_catalogue_once_there_is_one():
    Feature.objects.create(code="exports")

    assert "requires_feature" in messages(Permission(code="orders.export", requires_feature="exprots"))
    Permission(code="orders.export", requires_feature="exports").clean()


def test_a_global_role_may_not_take_a_tenants_role_slug():
    acme = Tenant.objects.create(slug="acme", name="Acme")
    Role.objects.create(slug="auditor", name="Auditor", tenant=acme)

    assert "already have a role 'auditor'" in messages(Role(slug="auditor", name="Auditor"))["slug"][0]


def test_a_tenants_role_may_not_take_a_global_roles_slug_but_may_share_one_with_another_tenant():
    acme = Tenant.objects.create(slug="acme", name="Acme")
    globex = Tenant.objects.create(slug="globex", name="Globex")
    Role.objects.create(slug="viewer", name="Viewer")
    Role.objects.create(slug="auditor", name="Auditor", tenant=acme)

    assert (
        "A global role 'viewer' exists" in messages(Role(slug="viewer", name="V", tenant=globex))["slug"][0]
    )
    Role(slug="auditor", name="Auditor", tenant=globex).clean()


def test_a_tenants_own_role_is_granted_only_in_that_tenant():
    acme = Tenant.objects.create(slug="acme", name="Acme")
    globex = Tenant.objects.create(slug="globex", name="Globex")
    auditor = Role.objects.create(slug="auditor", name="Auditor", tenant=acme)

    grant = Grant(
        tenant=globex, role=auditor, provider=entra.TENANT_ID, subject_type="user", subject_id=USER_ID
    )

    assert "belongs to tenant 'acme'" in messages(grant)["role"][0]
    Grant(
        tenant=acme, role=auditor, provider=entra.TENANT_ID, subject_type="user", subject_id=USER_ID
    ).clean()
