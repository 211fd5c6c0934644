"""Smart paste in a real browser: the pasted request fills the add-grant form, each filled field marked
for review, and nothing is saved until the admin saves; a tenant administrator gets only their tenants."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from accounts.models import User
from authz.models import Grant
from tests.support.browser import PASSWORD, sign_in
from tests.support.search_cases import acme_administrator, catalogue, fresh_search

__all__ = ["catalogue", "fresh_search"]

G = "2f0e3b4c-8a1d-4c5e-9f60-7b8c9d0e1f2a"
REQUEST = f"Please give {G} read access to orders in Acme until 31 March, approved by J. Doe, ticket OPS-4411"


def paste(page: Any, text: str) -> None:
    page.fill("#smart-paste-text", text)
    page.click(".smart-paste button")
    expect(page.locator(".smart-paste-result")).not_to_be_empty()


def test_a_pasted_request_fills_the_form_for_review_and_saves_only_on_click(
    page: Any, screenshot: Any, catalogue: None
) -> None:
    User.objects.create_superuser("admin", password=PASSWORD)
    sign_in(page, "admin")
    page.goto("/admin/authz/grant/add/")
    paste(page, REQUEST)

    expect(page.locator("#id_subject_id")).to_have_value(G)
    expect(page.locator("#select2-id_tenant-container")).to_contain_text("acme")
    expect(page.locator("#select2-id_role-container")).to_contain_text("viewer")
    expect(page.locator("#id_reason")).to_have_value("OPS-4411, approved by J. Doe")
    expect(page.locator("#id_valid_until_0")).to_have_value("2027-03-31")
    for field in ("tenant", "role", "subject_id", "reason", "valid_until"):
        expect(page.locator(f".field-{field}.smart-filled").first).to_be_visible()
    # Its own help stays described, with the note beside it; a screen reader reads both.
    expect(page.locator("#id_subject_id")).to_have_attribute(
        "aria-describedby", re.compile(r"\bsmart-note-subject_id\b")
    )
    expect(page.locator(".smart-paste-result")).to_contain_text("nothing is saved until you save")
    screenshot("filled")
    assert not Grant.objects.filter(subject_id=G).exists(), "nothing saved before the admin's click"

    page.click("input[name=_save]")
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    grant = Grant.objects.get(subject_id=G)
    assert (grant.tenant.slug, grant.role.slug, grant.reason) == (
        "acme",
        "viewer",
        "OPS-4411, approved by J. Doe",
    )
    assert (grant.valid_until.month, grant.valid_until.day) == (3, 31)


def test_text_that_cannot_be_used_is_shown_not_guessed(page: Any, catalogue: None) -> None:
    User.objects.create_superuser("admin", password=PASSWORD)
    sign_in(page, "admin")
    page.goto("/admin/authz/grant/add/")
    paste(page, f"{G} needs access to acme and globex, per the blorp")
    result = page.locator(".smart-paste-result")
    expect(result).to_contain_text("Several tenants are named (acme, globex)")
    expect(result).to_contain_text("blorp")
    expect(page.locator("#id_subject_id")).to_have_value(G)
    expect(page.locator(".field-tenant.smart-filled")).to_have_count(0)


def test_a_tenant_administrators_paste_stays_within_their_tenants(
    page: Any, screenshot: Any, catalogue: None
) -> None:
    acme_administrator("ann", password=PASSWORD)
    sign_in(page, "ann")
    page.goto("/admin/authz/grant/add/")
    paste(page, "Carol Danvers should be an auditor in globex")
    result = page.locator(".smart-paste-result")
    expect(result).to_contain_text("Not used from the text")
    expect(result).to_contain_text("globex")
    expect(page.locator("#id_subject_id")).to_have_value("")
    expect(page.locator("#select2-id_tenant-container")).not_to_contain_text("globex")
    paste(page, f"{G} should adjust stock in acme")
    expect(page.locator("#select2-id_role-container")).to_contain_text("stock-keeper")
    screenshot("tenant-admin")
