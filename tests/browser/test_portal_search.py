"""The search box in a real browser: chips for what was understood, removing and editing them, words
not understood shown; a tenant administrator never sees another tenant through it."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from accounts.models import User
from tests.support.browser import PASSWORD, sign_in
from tests.support.search_cases import acme_administrator, catalogue, fresh_search

__all__ = ["catalogue", "fresh_search"]

ALICE = "a11ce000-0000-4000-8000-000000000002"
EVE = "e7e00000-0000-4000-8000-000000000005"


def search(page: Any, question: str) -> None:
    page.fill("#portal-search-q", question)
    page.press("#portal-search-q", "Enter")
    expect(page.locator(".search-chips")).to_be_visible()


def chip(page: Any, name: str) -> Any:
    return page.locator(f".search-chip[data-filter={name}]")


def test_an_admin_searches_sees_chips_and_removes_and_edits_them(
    page: Any, screenshot: Any, catalogue: None
) -> None:
    User.objects.create_superuser("admin", password=PASSWORD)
    sign_in(page, "admin")
    page.goto("/admin/authz/grant/")
    page.fill("#portal-search-q", "viewers in acme, pronto")
    preview = page.locator(".portal-search-preview")
    expect(preview).to_contain_text("role: viewer")  # the live preview, from the JSON endpoint
    expect(preview).to_contain_text("Not understood: pronto")
    screenshot("preview")
    page.press("#portal-search-q", "Enter")

    expect(chip(page, "role").locator("input")).to_have_value("viewer")
    expect(chip(page, "tenant").locator("input")).to_have_value("acme")
    expect(page.locator(".search-unmatched-word")).to_have_text(["pronto"])
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    expect(page.locator("#result_list")).to_contain_text("a11ce000")
    screenshot("chips")

    chip(page, "tenant").locator(".search-chip-remove").click()
    expect(chip(page, "tenant")).to_have_count(0)
    expect(page.locator("#result_list tbody tr")).to_have_count(2)  # acme's viewer and initech's
    expect(page.locator("#result_list")).to_contain_text("e7e00000")

    search(page, "viewers in acme")
    chip(page, "tenant").locator("input").fill("initech")
    chip(page, "tenant").locator("input").press("Enter")
    expect(chip(page, "tenant").locator("input")).to_have_value("initech")
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    expect(page.locator("#result_list")).to_contain_text("e7e00000")
    screenshot("chip-edited")


def test_a_search_for_another_list_goes_there(page: Any, catalogue: None) -> None:
    User.objects.create_superuser("admin", password=PASSWORD)
    sign_in(page, "admin")
    page.goto("/admin/authz/grant/")
    page.fill("#portal-search-q", "suspended tenants")
    page.press("#portal-search-q", "Enter")
    expect(page).to_have_url("/admin/authz/tenant/?status__exact=suspended")
    expect(page.locator(".messagelist")).to_contain_text("tenant status: suspended")
    expect(page.locator("#result_list tbody tr")).to_have_count(2)


def test_a_tenant_administrator_never_sees_another_tenant_through_search(
    page: Any, screenshot: Any, catalogue: None
) -> None:
    acme_administrator("ann", password=PASSWORD)
    sign_in(page, "ann")
    page.goto("/admin/authz/grant/")
    page.fill("#portal-search-q", "viewers in globex")
    expect(page.locator(".portal-search-preview")).to_contain_text("Not understood: globex")
    page.press("#portal-search-q", "Enter")
    expect(page.locator(".search-unmatched-word")).to_have_text(["globex"])
    expect(chip(page, "tenant")).to_have_count(0)
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    expect(page.locator("#result_list")).to_contain_text(ALICE[:8])
    body = page.locator("body").inner_text().lower()
    for other in ("initech", "umbrella", "hooli", EVE[:8], "carol", "globex inc"):
        assert other not in body, other
    screenshot("tenant-admin")

    chip(page, "role").locator("input").fill("viewer")
    page.goto("/admin/search/?target=grants&tenant=initech&role=viewer")
    expect(page.locator(".search-unmatched-word")).to_have_text(["initech"])
    expect(page.locator("#result_list")).not_to_contain_text(EVE[:8])
