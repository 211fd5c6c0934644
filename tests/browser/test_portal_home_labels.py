"""Labels in a real browser: beside ids in the lists, found by search, given from a grant's page; and
every list of the portal still fits a 1280 px screen."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from authz.models import Audience, Feature, SubjectLabel
from tests.support.browser import sign_in
from tests.support.portal_home import FINANCE, UNLABELLED, a_day_of_work, one_provider

__all__ = ["one_provider"]

pytestmark = pytest.mark.usefixtures("one_provider")


def test_labels_show_beside_ids_and_find_grants_by_name(page: Any, screenshot: Any) -> None:
    a_day_of_work()
    sign_in(page, "platform-admin")

    page.goto("/admin/authz/grant/")
    finance = page.locator("#result_list tr").filter(has=page.locator(f"[data-copy='{FINANCE}']"))
    expect(finance).to_contain_text("Finance approvers")
    expect(finance.locator(f".guid[title='{FINANCE}']")).to_have_text("2f0e3b4c…1f2a")
    screenshot("grants")

    page.fill("#searchbar", "finance approv")
    page.keyboard.press("Enter")
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    expect(page.locator("#result_list tbody")).to_contain_text("Finance approvers")

    page.goto("/admin/accounts/principal/")
    expect(page.locator("#result_list")).to_contain_text("Bob from operations")
    screenshot("principals")


def test_a_tenant_administrator_labels_their_user_from_the_grant_page(page: Any, screenshot: Any) -> None:
    work = a_day_of_work()
    sign_in(page, "alice")

    page.goto(f"/admin/authz/grant/{work.unlabelled_grant.pk}/change/")
    page.get_by_role("link", name="Label this user").click()
    expect(page.locator("#id_subject_id")).to_have_value(UNLABELLED)
    page.get_by_label("Label:").fill("  Dana, temporary cover  ")
    screenshot("label-add")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")

    assert SubjectLabel.objects.get(subject_id=UNLABELLED).label == "Dana, temporary cover"
    labels = page.locator("#result_list tbody tr")
    expect(labels).to_have_count(3)  # acme's subjects only: globex's contractor is not listed
    expect(page.locator("#result_list")).not_to_contain_text("Globex")
    screenshot("labels")

    page.goto("/admin/authz/grant/")
    expect(page.locator("#result_list")).to_contain_text("Dana, temporary cover")


FITS = """() => {
  const root = document.documentElement;
  const boxes = [...document.querySelectorAll("#changelist .results, #content, #main")];
  return root.scrollWidth <= root.clientWidth && boxes.every((box) => box.scrollWidth <= box.clientWidth);
}"""


def test_every_list_fits_1280_pixels_with_labels_and_providers(page: Any, signing_key: None) -> None:
    a_day_of_work()
    Feature.objects.create(code="exports", description="Exports of every order of the tenant to CSV files")
    Audience.objects.create(identifier="api://orders-and-invoices", name="Orders and invoices API")
    sign_in(page, "platform-admin")

    lists = [
        "authz/grant",
        "authz/subjectlabel",
        "accounts/principal",
        "authz/tenant",
        "authz/role",
        "authz/permission",
        "authz/feature",
        "authz/audience",
        "authz/tenantadministrator",
        "accounts/user",
        "auth/group",
        "keys/signingkey",
        "keys/jwksdocument",
        "django_celery_beat/periodictask",
    ]
    cut_off = []
    for name in lists:
        page.goto(f"/admin/{name}/")
        expect(page.locator("#changelist")).to_be_visible()
        if not page.evaluate(FITS):
            cut_off.append(name)
    assert cut_off == [], f"these lists scroll sideways at 1280 px: {cut_off}"
    page.goto("/admin/authz/grant/?validity=expiring")
    for column in ("valid until", "validity", "granted by", "created at"):
        expect(page.locator("#result_list thead")).to_contain_text(
            re.compile(column.replace(" ", r"\s+"), re.I)
        )
