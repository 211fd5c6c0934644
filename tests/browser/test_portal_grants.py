"""Daily grant work in a real browser: create a grant, preview it, revoke it; a tenant admin's limits."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from accounts.models import User
from authz.models import Audience, Grant, Permission, Role, Tenant
from authz.portal import tenant_administrator_add

PASSWORD = "a-long-local-password-for-the-browser"
SUBJECT = "2f0e3b4c-8a1d-4c5e-9f60-7b8c9d0e1f2a"
# The one trusted identity provider (an Entra directory): the forms choose it for the admin.
DIRECTORY = "72f988bf-86f1-41af-91ab-2d7cd011db47"


@pytest.fixture(autouse=True)
def one_trusted_directory(settings: Any) -> None:
    settings.ENTRA_TENANT_ID = [DIRECTORY]


def sign_in(page: Any, username: str) -> None:
    page.goto("/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#user-tools")).to_be_visible()


def choose(page: Any, field: str, text: str) -> None:
    """Pick ``text`` in the admin's autocomplete (select2) widget of ``field``."""
    page.click(f".field-{field} .select2-selection")
    page.fill(".select2-container--open .select2-search__field", text)
    page.click(f".select2-results__option:has-text('{text}')")


def orders_catalogue() -> dict[str, Any]:
    """The orders API's read permission in a viewer role, and two tenants to grant it in."""
    read = Permission.objects.create(code="orders.read", description="Read orders")
    viewer = Role.objects.create(slug="viewer", name="Viewer")
    viewer.permissions.set([read])
    Audience.objects.create(identifier="api://orders", name="Orders API").permissions.set([read])
    return {
        "acme": Tenant.objects.create(slug="acme", name="Acme Corp"),
        "globex": Tenant.objects.create(slug="globex", name="Globex Inc"),
        "viewer": viewer,
    }


def test_an_admin_creates_a_grant_previews_it_and_revokes_it(page: Any, screenshot: Any) -> None:
    orders_catalogue()
    User.objects.create_superuser("admin", password=PASSWORD)
    sign_in(page, "admin")

    page.goto("/admin/authz/grant/add/")
    choose(page, "tenant", "acme")
    choose(page, "role", "viewer")
    page.select_option("#id_subject_type", "user")
    page.fill("#id_subject_id", SUBJECT)
    page.fill("#id_reason", "new starter, ticket 42")
    screenshot("add-grant")
    page.click("input[name=_save]")
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    screenshot("grant-list")
    grant = Grant.objects.get(subject_id=SUBJECT)

    page.goto(f"/admin/authz/grant/{grant.pk}/change/")
    page.click("text=Preview access")
    expect(page.locator("#id_subject_id")).to_have_value(SUBJECT)
    page.select_option("#id_audience", "api://orders")
    page.click("#preview-form input[type=submit]")
    expect(page.locator("#preview-claims")).to_contain_text("viewer")
    expect(page.locator("#preview-claims")).to_contain_text("orders.read")
    expect(page.locator("#preview-holdings")).to_contain_text(f"grant #{grant.pk}")
    screenshot("preview")

    page.goto("/admin/authz/grant/")
    page.check(f"input[name=_selected_action][value='{grant.pk}']")
    page.select_option("select[name=action]", "revoke_grants")
    page.click("button[name=index]")
    expect(page.locator("#bulk-action-form")).to_be_visible()
    page.fill("#id_reason", "left the company")
    screenshot("revoke-reason")
    page.click("#bulk-action-form input[name=apply]")
    expect(page.locator(".messagelist")).to_contain_text("Revoked 1 grant(s)")
    screenshot("revoked")

    page.goto(f"/admin/authz/grant/preview/?subject_id={SUBJECT}&tenant=acme&audience=api://orders")
    expect(page.locator("#preview-refusal")).to_be_visible()
    expect(page.locator("#preview-omissions")).to_contain_text("grant_expired")
    screenshot("preview-after-revoke")
    grant.refresh_from_db()
    assert grant.valid_until is not None
    assert grant.history.latest().history_change_reason == "left the company"


def test_a_tenant_admin_cannot_see_another_tenant(page: Any, screenshot: Any) -> None:
    found = orders_catalogue()
    platform = User.objects.create_superuser("admin", password=PASSWORD)
    alice = User.objects.create_user("alice", password=PASSWORD)
    tenant_administrator_add(user=alice, tenant=found["acme"], by=platform)
    mine = Grant.objects.create(
        tenant=found["acme"],
        role=found["viewer"],
        subject_type="user",
        provider=DIRECTORY,
        subject_id=SUBJECT,
    )
    theirs = Grant.objects.create(
        tenant=found["globex"],
        role=found["viewer"],
        subject_type="user",
        provider=DIRECTORY,
        subject_id="3a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
    )
    sign_in(page, "alice")
    screenshot("tenant-admin-home")
    expect(page.locator("#content")).not_to_contain_text("Audiences")
    expect(page.locator("#content")).not_to_contain_text("Users")

    page.goto("/admin/authz/grant/")
    # The list shows subjects shortened, each whole in its title and its copy button.
    expect(page.locator(f"#result_list [title='{mine.subject_id}']")).to_have_count(1)
    expect(page.locator(f"#result_list [data-copy='{theirs.subject_id}']")).to_have_count(0)
    expect(page.locator("#result_list")).not_to_contain_text(theirs.subject_id[:8])
    expect(page.locator("#changelist-filter")).not_to_contain_text("globex")
    screenshot("tenant-admin-grants")

    response = page.goto(f"/admin/authz/grant/{theirs.pk}/change/")
    assert response is not None and response.status == 403
    screenshot("another-tenants-grant-forbidden")

    page.goto("/admin/authz/grant/preview/")
    options = page.locator("#id_tenant option").all_text_contents()
    assert "globex" not in " ".join(options) and any(re.search("acme", o) for o in options)
    screenshot("tenant-admin-preview-form")
