"""The portal as a new admin meets it: its name, navigation by task, lists that fit 1280 px, copyable ids."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Principal, User
from authz.models import Audience, Grant, Permission, Role, Tenant
from authz.portal import tenant_administrator_add

PASSWORD = "a-long-local-password-for-the-browser"
SUBJECT = "2f0e3b4c-8a1d-4c5e-9f60-7b8c9d0e1f2a"
DIRECTORY = "72f988bf-86f1-41af-91ab-2d7cd011db47"


def sign_in(page: Any, username: str) -> None:
    page.goto("/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#user-tools")).to_be_visible()


def a_busy_portal() -> dict[str, Any]:
    """Long names, every grant column filled, a principal and keys: what a real list shows."""
    read = Permission.objects.create(code="orders.read", description="Read orders")
    approver = Role.objects.create(slug="order-approver", name="Order approver")
    approver.permissions.set([read])
    Audience.objects.create(identifier="api://orders", name="Orders API").permissions.set([read])
    acme = Tenant.objects.create(slug="acme-corporation", name="Acme Corporation International", features=[])
    admin = User.objects.create_superuser("platform-administrator", password=PASSWORD)
    now = timezone.now()
    for n in range(3):
        Grant.objects.create(
            tenant=acme,
            role=approver,
            subject_type="group" if n else "user",
            provider=DIRECTORY,
            subject_id=SUBJECT if n == 0 else f"3a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4{n}",
            valid_from=now - timedelta(days=30),
            valid_until=now + timedelta(days=3 + 100 * n),
            granted_by=admin,
            reason="quarterly access review, ticket OPS-4411",
        )
    Principal.objects.create(provider=DIRECTORY, subject=SUBJECT, last_seen_at=now)
    return {"acme": acme, "admin": admin}


FITS = """() => {
  const root = document.documentElement;
  // Django's admin scrolls a wide list inside its own box (.results): that counts as cut off too.
  const boxes = [...document.querySelectorAll("#changelist .results, #content, #main")];
  return root.scrollWidth <= root.clientWidth && boxes.every((box) => box.scrollWidth <= box.clientWidth);
}"""


def fits(page: Any) -> bool:
    return page.evaluate(FITS)


def test_a_platform_admin_sees_the_portals_name_and_its_pages_grouped_by_task(
    page: Any, screenshot: Any
) -> None:
    a_busy_portal()
    sign_in(page, "platform-administrator")

    expect(page.locator("#site-name")).to_have_text("Token issuer")
    assert page.title() == "Home | Token issuer"
    sections = page.locator("#content-main caption").all_text_contents()
    assert [s.strip() for s in sections] == ["Access", "People", "Signing keys", "Schedules"]
    expect(page.locator("#content-main")).not_to_contain_text("Crontabs")
    expect(page.locator("#content-main")).not_to_contain_text("Solar events")
    expect(page.locator("#user-tools")).not_to_contain_text("View site")
    screenshot("home")


def test_a_tenant_admin_sees_only_the_access_section(page: Any, screenshot: Any) -> None:
    found = a_busy_portal()
    alice = User.objects.create_user("alice", password=PASSWORD)
    tenant_administrator_add(user=alice, tenant=found["acme"], by=found["admin"])
    sign_in(page, "alice")

    sections = page.locator("#content-main caption").all_text_contents()
    # People holds only the labels of their tenants' subjects for them.
    assert [s.strip() for s in sections] == ["Access", "People"]
    for hidden in ("Schedules", "Signing keys", "Principals", "Staff users", "Audiences"):
        expect(page.locator("#content-main")).not_to_contain_text(hidden)
    screenshot("tenant-admin-home")


def test_every_list_fits_1280_pixels(page: Any, screenshot: Any, signing_key: None) -> None:
    a_busy_portal()
    sign_in(page, "platform-administrator")
    assert page.viewport_size == {"width": 1280, "height": 800}

    for name, path in [
        ("grants", "/admin/authz/grant/"),
        ("signing-keys", "/admin/keys/signingkey/"),
        ("tenants", "/admin/authz/tenant/"),
        ("principals", "/admin/accounts/principal/"),
    ]:
        page.goto(path)
        expect(page.locator("#result_list")).to_be_visible()
        screenshot(name)
        assert fits(page), f"{path} scrolls sideways at 1280 px"
    page.goto("/admin/authz/grant/")
    for column in ("valid until", "validity", "granted by", "created at"):
        expect(page.locator("#result_list thead")).to_contain_text(column, ignore_case=True)


def test_a_shortened_guid_shows_whole_on_hover_and_copies_whole(page: Any, screenshot: Any) -> None:
    a_busy_portal()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    sign_in(page, "platform-administrator")
    page.goto("/admin/authz/grant/?subject_type__exact=user")

    shown = page.locator("#result_list .guid").first
    expect(shown).to_have_text("2f0e3b4c…1f2a")
    expect(shown).to_have_attribute("title", SUBJECT)
    button = page.locator("#result_list button.copy-id").first
    expect(button).to_have_attribute("aria-label", f"Copy subject id {SUBJECT}")
    button.focus()
    page.keyboard.press("Enter")  # from the keyboard, as a screen-reader user would
    expect(button).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == SUBJECT
    screenshot("copied")


def test_the_preview_form_is_laid_out_like_the_portals_other_forms(page: Any, screenshot: Any) -> None:
    a_busy_portal()
    sign_in(page, "platform-administrator")
    page.goto("/admin/authz/grant/preview/")

    inputs = page.locator("#preview-form .form-row").locator("input:not([type=checkbox]), select, textarea")
    lefts = {round(box["x"]) for box in (inputs.nth(i).bounding_box() for i in range(inputs.count())) if box}
    assert len(lefts) == 1, f"the fields start at {sorted(lefts)}: ragged"
    for label in page.locator("#preview-form .form-row label").all():
        assert label.get_attribute("for"), "every field has its label"
    screenshot("preview-form")
