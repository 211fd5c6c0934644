"""ensure_local_admin: a first administrator with a one-time password, then how to reset it."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db


def ensure_local_admin(*args: str) -> str:
    out = StringIO()
    call_command("ensure_local_admin", *args, stdout=out)
    return out.getvalue()


def test_the_first_run_creates_a_superuser_and_prints_its_password_once():
    output = ensure_local_admin()

    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser
    password = output.split("with password '")[1].split("'")[0]
    assert admin.check_password(password)


def test_a_second_run_prints_no_password_but_how_to_set_one(monkeypatch, settings):
    monkeypatch.chdir(settings.BASE_DIR)
    monkeypatch.setenv("ENV_FILE", "var/dev.env")
    ensure_local_admin()

    output = ensure_local_admin()

    assert "password '" not in output
    assert "already exists ('admin')" in output
    assert output.rstrip().endswith("manage.py changepassword admin")
    assert "To set one: ENV_FILE=var/dev.env " in output


def test_the_reset_line_names_the_superuser_that_exists(monkeypatch):
    monkeypatch.delenv("ENV_FILE", raising=False)
    get_user_model().objects.create_superuser(username="alice", email="", password="x" * 20)

    output = ensure_local_admin()

    assert "already exists ('alice')" in output
    assert output.rstrip().endswith("changepassword alice")
    assert "ENV_FILE" not in output
    assert not get_user_model().objects.filter(username="admin").exists()


def test_a_plain_user_holding_the_name_is_refused():
    get_user_model().objects.create_user(username="admin", password="x" * 20)

    with pytest.raises(CommandError, match="not a superuser"):
        ensure_local_admin()
