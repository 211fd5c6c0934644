"""Signing in to the portal in a real browser: a password, Microsoft (the fake Entra), passwords off."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from accounts.models import User

PASSWORD = "a-long-local-password-for-the-browser"


def test_an_admin_signs_in_with_a_password(page, screenshot):
    User.objects.create_superuser("admin", email="admin@example.com", password=PASSWORD)

    page.goto("/admin/")
    expect(page).to_have_url(re.compile(r"/admin/login/\?next=/admin/$"))
    screenshot("login-page")
    page.fill("#id_username", "admin")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")

    expect(page.locator("#site-name")).to_be_visible()
    expect(page.locator("#user-tools")).to_contain_text("admin")
    screenshot("site-administration")


def test_a_platform_admin_signs_in_with_microsoft_and_signing_out_ends_the_entra_session(
    page, screenshot, fake_oidc
):
    page.goto("/admin/")
    expect(page.locator("#sign-in-microsoft")).to_be_visible()
    screenshot("login-page-with-microsoft")

    page.click("#sign-in-microsoft")
    expect(page).to_have_url(re.compile(re.escape(fake_oidc.endpoint("authorize"))))
    expect(page.locator("#account")).to_contain_text("Ada Lovelace")
    screenshot("entra-sign-in-page")
    page.click("#continue")

    expect(page.locator("#user-tools")).to_contain_text("Ada Lovelace")
    expect(page).to_have_url(re.compile(r"/admin/$"))
    screenshot("site-administration")
    user = User.objects.get(entra_oid=fake_oidc.account.oid)
    assert user.is_superuser and user.entra_tid == fake_oidc.account.tid

    page.click("#logout-form button")
    expect(page).to_have_url(re.compile(r"/admin/login/$"))
    assert fake_oidc.logouts[-1]["post_logout_redirect_uri"].endswith("/admin/login/")
    screenshot("signed-out")
    page.goto("/admin/")
    expect(page).to_have_url(re.compile(r"/admin/login/"))


def test_an_entra_account_without_the_admin_role_is_turned_away(page, screenshot, fake_oidc):
    fake_oidc.account.roles = []

    page.goto("/admin/login/")
    page.click("#sign-in-microsoft")
    page.click("#continue")

    expect(page).to_have_url(re.compile(r"/admin/login/\?sign_in=failed$"))
    expect(page.locator(".errornote")).to_contain_text("no access to this portal")
    screenshot("turned-away")


def test_with_password_sign_in_off_only_microsoft_is_offered_and_a_password_post_is_refused(
    page, screenshot, fake_oidc, settings
):
    User.objects.create_superuser("admin", password=PASSWORD)
    page.goto("/admin/login/")
    page.fill("#id_username", "admin")  # a page opened before the switch still has the form
    page.fill("#id_password", PASSWORD)

    settings.PORTAL_PASSWORD_LOGIN = False
    settings.AUTHENTICATION_BACKENDS = ["accounts.oidc.EntraBackend"]
    page.click("input[type=submit]")

    expect(page.locator("body")).to_contain_text("Password sign-in is turned off")
    screenshot("password-post-refused")
    page.goto("/admin/login/")
    expect(page.locator("#sign-in-microsoft")).to_be_visible()
    expect(page.locator("#id_password")).to_have_count(0)
    screenshot("login-page-microsoft-only")
    page.goto("/admin/")
    expect(page).to_have_url(re.compile(r"/admin/login/"))
