"""Policy import: idempotent, all-or-nothing, prune, history (with its actor), COPY on PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model

from authz.models import Audience, Grant, Permission, Role, Tenant
from authz.policy import policy_dumps, policy_export, policy_import
from authz.policy.storage import grants_copy_supported
from tests import fake_entra as entra
from tests.support.policy import (
    GROUP_ID,
    OTHER_USER,
    PROVIDER,
    USER_ID,
    canonical,
    counts,
    design_example,
    errors_of,
    nothing_stored,
)

pytestmark = pytest.mark.django_db


# --- importing --------------------------------------------------------------------------------


def test_it_imports_the_design_example():
    report = policy_import(document=design_example())

    assert counts(report) == {
        "features": (0, 0, 0, 0),
        "permissions": (1, 0, 0, 0),
        "audiences": (1, 0, 0, 0),
        "roles": (1, 0, 0, 0),
        "tenants": (1, 0, 0, 0),
        "grants": (2, 0, 0, 0),
    }
    assert set(Audience.objects.get().permissions.values_list("code", flat=True)) == {"orders.read"}
    assert set(Role.objects.get(slug="viewer").permissions.values_list("code", flat=True)) == {"orders.read"}
    assert Tenant.objects.get(slug="acme").features == ["exports"]
    user_grant = Grant.objects.get(subject_type="user")
    assert user_grant.subject_id == USER_ID
    assert user_grant.valid_until == datetime(2027, 1, 1, tzinfo=UTC)
    assert Grant.objects.get(subject_type="group").subject_id == GROUP_ID


def test_a_second_import_changes_nothing():
    policy_import(document=design_example())

    report = policy_import(document=design_example())

    assert report.changes == 0
    assert counts(report)["grants"] == (0, 0, 0, 2)
    assert counts(report)["roles"] == (0, 0, 0, 1)


def test_export_of_a_canonical_import_equals_the_file():
    policy_import(document=canonical())

    assert policy_export() == canonical()


def test_export_then_import_is_a_no_op():
    policy_import(document=design_example())
    exported = json.loads(policy_dumps(policy_export()))

    report = policy_import(document=exported)

    assert report.changes == 0
    assert json.loads(policy_dumps(policy_export())) == exported


def test_it_updates_changed_entries_and_replaces_lists():
    policy_import(document=canonical())
    changed = canonical()
    changed["permissions"][2]["description"] = "Write orders"
    changed["roles"][0]["permissions"] = ["orders.read"]
    changed["audiences"][0]["name"] = "Orders"
    changed["tenants"][0]["features"] = ["sso"]
    changed["tenants"][1]["status"] = "active"
    changed["grants"][3]["valid_until"] = "2030-06-01T12:00:00+02:00"

    report = policy_import(document=changed)

    assert counts(report) == {
        "features": (0, 0, 0, 2),
        "permissions": (0, 1, 0, 2),
        "audiences": (0, 1, 0, 0),
        "roles": (0, 1, 0, 2),
        "tenants": (0, 2, 0, 0),
        "grants": (0, 1, 0, 3),
    }
    assert list(Role.objects.get(slug="editor").permissions.values_list("code", flat=True)) == ["orders.read"]
    assert Tenant.objects.get(slug="acme").features == ["sso"]
    assert Grant.objects.get(tenant__slug="globex").valid_until == datetime(2030, 6, 1, 10, tzinfo=UTC)
    assert policy_export() == json.loads(json.dumps(changed)) | {"grants": policy_export()["grants"]}


def test_a_grant_may_use_its_tenants_own_role():
    policy_import(document=canonical())

    grant = Grant.objects.get(subject_id=OTHER_USER)

    assert grant.role.tenant.slug == "acme"


def test_an_import_may_reference_rows_already_stored():
    policy_import(document=canonical())
    more = {"grants": [{"tenant": "globex", "role": "viewer", "provider": PROVIDER, "group": GROUP_ID}]}

    report = policy_import(document=more)

    assert counts(report)["grants"] == (1, 0, 0, 0)
    assert Grant.objects.count() == 5


def test_it_normalises_ids_and_timestamps():
    document = design_example()
    document["grants"][0]["user"] = USER_ID.upper()
    document["grants"][0]["valid_from"] = "2026-03-01T01:00:00+01:00"

    policy_import(document=document)

    grant = Grant.objects.get(subject_type="user")
    assert grant.subject_id == USER_ID
    assert grant.valid_from == datetime(2026, 3, 1, 0, tzinfo=UTC)


def test_a_dry_run_writes_nothing_and_reports_the_same():
    dry = policy_import(document=canonical(), dry_run=True)
    assert dry.dry_run
    assert nothing_stored()

    real = policy_import(document=canonical())

    assert counts(dry) == counts(real)
    assert real.changes == 15


def test_all_omitted_optional_fields_take_their_defaults():
    document = {
        "permissions": [{"code": "a.read"}],
        "roles": [{"slug": "r", "name": "R"}],
        "tenants": [{"slug": "t", "name": "T"}],
        "audiences": [{"id": "api://a", "name": "A"}],
        "grants": [{"tenant": "t", "role": "r", "provider": PROVIDER, "user": USER_ID}],
    }

    policy_import(document=document)

    tenant = Tenant.objects.get()
    assert (tenant.status, tenant.features) == ("active", [])
    assert Permission.objects.get().description == ""
    assert Grant.objects.get().valid_until is None


def test_an_empty_document_changes_nothing():
    assert policy_import(document={}).changes == 0


# --- atomicity --------------------------------------------------------------------------------


def test_a_bad_entry_at_the_end_writes_nothing():
    document = canonical()
    document["grants"].append({"tenant": "acme", "role": "viewr", "provider": PROVIDER, "user": USER_ID})

    assert errors_of(document) == ["grants[4]: role 'viewr' does not exist"]
    assert nothing_stored()


def test_a_bad_entry_leaves_stored_rows_untouched():
    policy_import(document=canonical())
    before = policy_export()
    document = canonical()
    document["permissions"][0]["description"] = "changed"
    document["grants"][0]["user"] = "not-a-guid"

    errors_of(document)

    assert policy_export() == before


# --- prune ------------------------------------------------------------------------------------


def test_prune_deletes_only_grants_missing_from_the_file():
    policy_import(document=canonical())
    document = canonical()
    del document["grants"][1:3]
    document["roles"] = document["roles"][:1]

    report = policy_import(document=document, prune=True)

    assert counts(report)["grants"] == (0, 0, 2, 2)
    assert Grant.objects.count() == 2
    assert Role.objects.count() == 3  # roles absent from the file are kept: prune is for grants only


def test_without_prune_grants_missing_from_the_file_are_kept():
    policy_import(document=canonical())
    document = canonical()
    document["grants"] = []

    report = policy_import(document=document)

    assert counts(report)["grants"] == (0, 0, 0, 0)
    assert Grant.objects.count() == 4


def test_prune_needs_a_grants_list():
    policy_import(document=canonical())

    assert errors_of({"permissions": []}, prune=True) == [
        "grants: --prune needs a 'grants' list in the file (an empty list deletes every grant)"
    ]
    assert Grant.objects.count() == 4


def test_a_dry_run_prune_deletes_nothing():
    policy_import(document=canonical())

    report = policy_import(document={"grants": []}, prune=True, dry_run=True)

    assert counts(report)["grants"] == (0, 0, 4, 0)
    assert Grant.objects.count() == 4


# --- history ----------------------------------------------------------------------------------


@pytest.fixture
def admin_user():
    return get_user_model().objects.create_user(username="ops", password="x")


def test_history_records_creates_with_the_actor_and_reason(admin_user):
    policy_import(document=canonical(), actor=admin_user)

    for model, expected in ((Permission, 3), (Audience, 1), (Role, 3), (Tenant, 2), (Grant, 4)):
        records = model.history.all()
        assert records.count() == expected, model
        assert {(r.history_type, r.history_user_id, r.history_change_reason) for r in records} == {
            ("+", admin_user.pk, "import_policy")
        }


def test_history_shows_a_changed_permission_list(admin_user):
    policy_import(document=canonical())
    document = canonical()
    document["roles"][0]["permissions"] = ["orders.read"]

    policy_import(document=document, actor=admin_user)

    editor = Role.objects.get(slug="editor")
    latest, first = editor.history.order_by("-history_id")[:2]
    assert latest.history_type == "~"
    assert latest.history_user == admin_user
    assert [p.permission.code for p in latest.permissions.all()] == ["orders.read"]
    assert sorted(p.permission.code for p in first.permissions.all()) == ["orders.read", "orders.write"]
    delta = latest.diff_against(first)
    assert delta.changed_fields == ["permissions"]


def test_history_records_updates_and_prune_deletions(admin_user):
    policy_import(document=canonical())
    document = canonical()
    document["grants"][0]["valid_until"] = "2030-01-01T00:00:00Z"
    del document["grants"][3]

    policy_import(document=document, prune=True, actor=admin_user)

    changed = Grant.history.filter(history_type="~").get()
    assert changed.subject_id == OTHER_USER
    assert changed.valid_until == datetime(2030, 1, 1, tzinfo=UTC)
    deleted = Grant.history.filter(history_type="-").get()
    assert (deleted.subject_id, deleted.tenant.slug) == (USER_ID, "globex")
    assert (deleted.history_user, deleted.history_change_reason) == (admin_user, "import_policy")


def test_grants_are_written_by_copy_on_postgresql(require_postgres):
    # If a model change turned COPY off, imports would silently fall back to the slower ORM path.
    assert grants_copy_supported()


def test_an_unchanged_import_writes_no_history():
    policy_import(document=canonical())
    before = sum(m.history.count() for m in (Permission, Audience, Role, Tenant, Grant))

    policy_import(document=canonical())

    assert sum(m.history.count() for m in (Permission, Audience, Role, Tenant, Grant)) == before


# --- progress ---------------------------------------------------------------------------------


def test_it_reports_progress_while_writing_grants():
    document = design_example()
    document["grants"] = [
        {
            "tenant": "acme",
            "role": "viewer",
            "provider": PROVIDER,
            "user": f"00000000-0000-4000-8000-{n:012x}",
        }
        for n in range(20)
    ]
    seen = []

    policy_import(document=document, progress=lambda stage, done, total: seen.append((stage, done, total)))

    assert seen[-1] == ("writing grants", 20, 20)


# --- identity providers ---------------------------------------------------------------------------


def without_providers(document: dict) -> dict:
    """The document as written while one provider was trusted: its grants name none."""
    for grant in document["grants"]:
        grant.pop("provider", None)
    return document


def test_with_one_trusted_provider_a_file_without_providers_binds_its_grants_to_it(settings):
    settings.ENTRA_TENANT_ID = [PROVIDER]

    policy_import(document=without_providers(design_example()))

    assert set(Grant.objects.values_list("provider", flat=True)) == {PROVIDER}
    assert {grant["provider"] for grant in policy_export()["grants"]} == {PROVIDER}
    # Once a second provider is trusted, the exported file still means the same grants.
    settings.ENTRA_TENANT_ID = [PROVIDER, entra.SECOND_TENANT_ID]
    assert policy_import(document=policy_export(), prune=True).changes == 0


def test_the_same_user_of_two_providers_holds_two_grants_and_prune_keeps_each_by_provider(settings):
    document = design_example()
    second = dict(document["grants"][0], provider=entra.SECOND_TENANT_ID)
    document["grants"].append(second)
    policy_import(document=document)
    assert Grant.objects.filter(subject_id=USER_ID).count() == 2

    document["grants"].remove(second)
    report = policy_import(document=document, prune=True)

    assert counts(report)["grants"] == (0, 0, 1, 2)
    assert list(Grant.objects.filter(subject_id=USER_ID).values_list("provider", flat=True)) == [PROVIDER]
