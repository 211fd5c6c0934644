"""The portal under its Content-Security-Policy in a real browser: every page works, none violates it.

The ``page`` fixture fails a test on any violation, so this walks the pages the other browser tests
do not: history, the periodic tasks (django-celery-beat's form), keys, users, the add forms.
"""

from __future__ import annotations

from typing import Any

from django_celery_beat.models import CrontabSchedule, PeriodicTask
from playwright.sync_api import expect

from accounts.models import User
from authz.models import Grant, Role, Tenant

PASSWORD = "a-long-local-password-for-the-browser"
SUBJECT = "2f0e3b4c-8a1d-4c5e-9f60-7b8c9d0e1f2a"


def test_the_portals_pages_work_without_violating_the_policy(page: Any, screenshot: Any) -> None:
    User.objects.create_superuser("admin", password=PASSWORD)
    tenant = Tenant.objects.create(slug="acme", name="Acme Corp")
    grant = Grant.objects.create(
        tenant=tenant,
        role=Role.objects.create(slug="viewer", name="Viewer"),
        subject_type="user",
        provider="72f988bf-86f1-41af-91ab-2d7cd011db47",
        subject_id=SUBJECT,
    )
    crontab = CrontabSchedule.objects.create(minute="0", hour="4")
    task = PeriodicTask.objects.first()
    assert task is not None  # the migrations schedule key rotation

    page.goto("/admin/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#user-tools")).to_be_visible()

    for path in [
        "/admin/",
        "/admin/authz/grant/",
        f"/admin/authz/grant/{grant.pk}/change/",
        f"/admin/authz/grant/{grant.pk}/history/",
        "/admin/authz/tenant/add/",
        "/admin/authz/role/add/",
        "/admin/keys/signingkey/",
        "/admin/accounts/user/",
        "/admin/django_celery_beat/periodictask/",
    ]:
        response = page.goto(path)
        assert response is not None and response.status == 200, path

    page.goto(f"/admin/django_celery_beat/periodictask/{task.pk}/change/")
    expect(page.locator("#id_name")).to_have_value(task.name)
    page.select_option("#id_crontab", str(crontab.pk))  # the library's script, now a file, still runs
    expect(page.locator(".field-crontab .help")).to_contain_text("Translation: At 04:00")
    screenshot("periodic-task")

    page.goto(f"/admin/authz/grant/{grant.pk}/history/")
    expect(page.locator("#content")).to_contain_text("acme")
    screenshot("grant-history")
