"""Policy export: the import format back out, one entry a line, in a stable order."""

from __future__ import annotations

import pytest

from authz.models import Grant, Role, Tenant
from authz.policy import PolicyError, policy_dumps, policy_export, policy_import
from tests.support.policy import (
    PROVIDER,
    USER_ID,
    canonical,
)

pytestmark = pytest.mark.django_db


# --- export -----------------------------------------------------------------------------------


def test_export_writes_one_entry_a_line_in_a_stable_order():
    policy_import(document=canonical())

    text = policy_dumps(policy_export())

    assert text == policy_dumps(canonical())
    assert text.splitlines()[1] == '  "features": ['
    assert (
        '    {"tenant": "acme", "role": "viewer", "provider": "' + PROVIDER + '", "user": "' + USER_ID + '",'
        ' "valid_from": null, '
        '"valid_until": "2027-01-01T00:00:00.250000Z"},' in text.splitlines()
    )


def test_export_of_an_empty_database_is_an_empty_policy():
    assert policy_dumps(policy_export()) == (
        '{\n  "features": [],\n  "permissions": [],\n  "audiences": [],\n  "roles": [],'
        '\n  "tenants": [],\n  "grants": []\n}\n'
    )


def test_export_refuses_a_grant_it_cannot_write_unambiguously():
    policy_import(document=canonical())
    # The portal refuses this too; rows written around it must not be exported as something else.
    acme = Tenant.objects.get(slug="acme")
    Role.objects.create(slug="editor-x", name="x")
    Grant.objects.create(
        tenant=acme,
        role=Role.objects.get(slug="editor-x"),
        subject_type="user",
        provider=PROVIDER,
        subject_id=USER_ID,
    )
    Role.objects.create(slug="editor-x", name="acme's", tenant=acme)

    with pytest.raises(PolicyError) as caught:
        policy_export()

    assert "uses the global role 'editor-x', but tenant 'acme' has its own role" in caught.value.errors[0]
