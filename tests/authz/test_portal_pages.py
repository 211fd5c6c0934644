"""How the portal reads to a new admin: its name, its navigation by task, filter names, history of imports."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.core.management import call_command
from django.urls import reverse

from accounts.models import User
from authz.models import Grant, Tenant
from tests.support.policy import design_example
from tests.support.portal import url

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]


def groups_on_the_index(client: Any) -> dict[str, list[str]]:
    """The index's sections and the models listed in each, as the admin reads them."""
    response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    sections = response.context["app_list"]
    return {section["name"]: [model["name"] for model in section["models"]] for section in sections}


def test_the_portal_carries_its_own_name_and_no_dead_view_site_link(admin_client: Any, settings: Any) -> None:
    settings.PORTAL_TITLE = "Acme access"

    page = admin_client.get(reverse("admin:index")).content.decode()

    assert "Acme access" in page
    assert "Django administration" not in page and "Django site admin" not in page
    assert "View site" not in page


def test_a_platform_admin_finds_the_pages_grouped_by_what_admins_do(admin_client: Any) -> None:
    groups = groups_on_the_index(admin_client)

    assert list(groups) == ["Access", "People", "Signing keys", "Schedules"]
    assert groups["Access"] == ["Tenants", "Grants", "Roles", "Permissions", "Features", "Audiences"]
    assert groups["People"] == [
        "Principals",
        "Identity providers",
        "Tenant administrators",
        "Labels",
        "Staff users",
        "Staff groups",
    ]
    assert groups["Signing keys"] == ["Signing keys", "JWKS versions"]
    assert groups["Schedules"] == ["Schedules"]


def test_a_tenant_admin_sees_only_the_access_they_manage(alice_client: Any) -> None:
    assert groups_on_the_index(alice_client) == {
        "Access": ["Tenants", "Grants", "Roles", "Permissions"],
        "People": ["Labels"],  # of the users and groups granted in their tenants
    }


def test_the_hidden_schedule_pages_still_serve_the_periodic_task_form(admin_client: Any) -> None:
    # Not on the index, but the periodic task form's "add another crontab" link still works.
    assert admin_client.get(reverse("admin:django_celery_beat_crontabschedule_add")).status_code == 200


def test_the_grant_filters_say_which_validity_and_which_status(admin_client: Any, acme: Tenant) -> None:
    page = admin_client.get(url("grant", "changelist")).content.decode()

    assert "By grant validity" in page and "By tenant status" in page
    assert "Valid now" in page and "Active tenants" in page and "Suspended tenants" in page


def test_an_imported_change_names_the_import_and_its_file_in_the_history(
    admin_client: Any, tmp_path: Any
) -> None:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(design_example()))
    call_command("import_policy", str(path), stdout=io.StringIO())
    grant = Grant.objects.first()
    assert grant is not None

    assert grant.history.latest().history_change_reason == "import_policy: policy.json"
    page = admin_client.get(url("grant", "history", grant.pk)).content.decode()
    assert "import_policy: policy.json" in page
    assert ">None<" not in page.replace(" ", "").replace("\n", "")


def test_a_change_by_an_admin_still_names_the_admin(
    admin_client: Any, admin_user: User, acme: Tenant
) -> None:
    acme.name = "Acme Ltd"
    acme._history_user = admin_user  # what the history middleware sets for a portal change
    acme.save()
    page = admin_client.get(url("tenant", "history", acme.pk)).content.decode()

    assert admin_user.username in page
