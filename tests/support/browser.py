"""What the portal's browser tests share: the local password their users get, and signing in with it."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

PASSWORD = "a-long-local-password-for-the-browser"


def sign_in(page: Any, username: str, password: str = PASSWORD) -> None:
    """Sign in on the portal's login page, as a person would, and wait for the signed-in header."""
    page.goto("/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    expect(page.locator("#user-tools")).to_be_visible()
