"""The portal's home page in a real browser: the day's questions at a glance, within the viewer's tenants,
usable from the keyboard and named for a screen reader."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support.browser import sign_in
from tests.support.portal_home import CONTRACTOR, FINANCE, UNLABELLED, a_day_of_work, one_provider

__all__ = ["one_provider"]

pytestmark = pytest.mark.usefixtures("one_provider")


def section(page: Any, name: str) -> Any:
    """A home page section by its accessible name (its heading), as a screen reader finds it."""
    return page.get_by_role("region", name=name)


# A control in an aria snapshot with the name the browser computed: `- button "Copy …"` (YAML may
# quote the whole line: `- 'link "Created: history"'`).
NAMED = re.compile(r"-\s+'?\w+ \"")

FITS = """() => {
  const root = document.documentElement, main = document.querySelector("#content-main");
  const cards = [...document.querySelectorAll(".home-card")];
  return root.scrollWidth <= root.clientWidth && main.scrollWidth <= main.clientWidth
    && cards.every((card) => card.scrollWidth <= card.clientWidth);
}"""


def test_a_platform_admin_answers_the_days_questions_at_a_glance(
    page: Any, screenshot: Any, signing_key: None
) -> None:
    a_day_of_work()
    sign_in(page, "platform-admin")
    assert page.title() == "Home | Token issuer"

    expiring = section(page, "Grants expiring within 7 days 3")
    rows = expiring.locator("tbody tr")
    expect(rows).to_have_count(3)
    # Soonest first, each subject shortened with its label, across every tenant.
    expect(rows.nth(0)).to_contain_text("group 2f0e3b4c…1f2a")
    expect(rows.nth(0)).to_contain_text("Finance approvers")
    expect(rows.nth(0)).to_contain_text("acme")
    expect(rows.nth(1)).to_contain_text("Globex contractor")
    expect(rows.nth(2)).to_contain_text(UNLABELLED[:8])

    changes = section(page, "Grant changes in the last 24 hours 7")
    expect(changes.locator("tbody tr").first).to_contain_text("import_policy: policy.json")
    expect(changes).to_contain_text("globex leaver GX-99")
    expect(changes).to_contain_text("quarterly review OPS-4411")
    expect(changes.locator("tbody tr").filter(has_text="globex leaver")).to_contain_text("platform-admin")

    suspended = section(page, "Suspended tenants 3")
    expect(suspended.locator("li")).to_have_text(
        ["Acme Archive acme-archive", "Globex Frozen globex-frozen", "Initech initech"]
    )
    seen = section(page, "Principals seen today 1")
    expect(seen).to_contain_text("Bob from operations")
    expect(seen).not_to_contain_text(UNLABELLED[:8])

    keys = section(page, "Signing keys")
    expect(keys).to_contain_text("ES256, signing since")
    expect(keys).to_contain_text("Next rotation")
    expect(page.get_by_role("navigation", name="All pages")).to_contain_text("Schedules")
    assert page.evaluate(FITS), "the home page scrolls sideways at 1280 px"
    screenshot("home")


def test_a_tenant_administrator_sees_only_their_tenants_on_the_home_page(
    page: Any, screenshot: Any, signing_key: None
) -> None:
    work = a_day_of_work()
    sign_in(page, "alice")

    main = page.locator("#content-main")
    expect(section(page, "Grants expiring within 7 days 2")).to_contain_text("Finance approvers")
    expect(section(page, "Grant changes in the last 24 hours 4")).to_contain_text(
        "import_policy: policy.json"
    )
    expect(section(page, "Suspended tenants 1").locator("li")).to_have_text(["Acme Archive acme-archive"])
    # Nothing of globex: not its tenants, grants, subjects, labels, changes or reasons.
    for secret in ("globex", "Globex", CONTRACTOR[:8], "GX-77", "GX-99", "Initech"):
        expect(main).not_to_contain_text(secret)
    expect(page.locator(f"[data-copy='{CONTRACTOR}']")).to_have_count(0)
    expect(page.locator(f"a[href*='/admin/authz/grant/{work.contractor_grant.pk}/']")).to_have_count(0)
    # Keys and principals are no tenant's: their sections are not there at all.
    expect(section(page, "Signing keys")).to_have_count(0)
    expect(page.get_by_role("region", name="Principals seen today")).to_have_count(0)
    assert page.evaluate(FITS)
    screenshot("tenant-admin-home")


def test_every_control_on_the_home_page_is_named_and_the_page_has_landmarks(
    page: Any, signing_key: None
) -> None:
    a_day_of_work()
    sign_in(page, "platform-admin")

    tree = page.locator("body").aria_snapshot()
    for landmark in ("banner", "main", 'navigation "All pages"', 'region "Signing keys"', "contentinfo"):
        assert landmark in tree, f"no {landmark} landmark in:\n{tree}"
    controls = page.locator("#content-main").locator("a, button, input, select, textarea")
    assert controls.count() > 20
    unnamed = []
    for n in range(controls.count()):
        control = controls.nth(n)
        # The name a screen reader announces, as the browser computes it: `- button "Copy …"`.
        if control.is_visible() and not NAMED.match(control.aria_snapshot()):
            unnamed.append(control.evaluate("(element) => element.outerHTML"))
    assert unnamed == [], "controls without a name:\n" + "\n".join(unnamed)
    copy = page.get_by_role("button", name=f"Copy group id {FINANCE}").first
    expect(copy).to_be_visible()


FOCUS_RING = """() => {
  const element = document.activeElement, style = getComputedStyle(element);
  return {inside: !!element.closest("#content-main"), tag: element.tagName,
          ring: style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 1};
}"""


def test_the_home_page_works_from_the_keyboard_with_a_visible_focus(page: Any, signing_key: None) -> None:
    a_day_of_work()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    sign_in(page, "platform-admin")

    visited = []
    for _ in range(60):
        page.keyboard.press("Tab")
        focus = page.evaluate(FOCUS_RING)
        if focus["inside"]:
            visited.append(focus)
            assert focus["ring"], f"no visible focus on a {focus['tag']}"
    assert {"A", "BUTTON"} <= {focus["tag"] for focus in visited}

    copy = page.get_by_role("button", name=f"Copy group id {FINANCE}").first
    copy.focus()
    page.keyboard.press("Enter")
    expect(copy).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == FINANCE
    page.get_by_role("link", name="Open them in the grant list").focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/admin/authz/grant/\?validity=expiring$"))
