"""Start-up refuses a KEY_ENCRYPTION_KEY that cannot open the stored keys, naming the setting."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from keys.checks import signing_keys_check, signing_keys_verify
from keys.services import signing_key_rotate

pytestmark = pytest.mark.django_db


def test_start_up_passes_when_the_secret_opens_every_key():
    signing_key_rotate()
    signing_keys_verify()
    assert signing_keys_check(databases=["default"]) == []


def test_start_up_fails_clearly_with_a_wrong_secret(settings):
    signing_key_rotate()
    settings.KEY_ENCRYPTION_KEYS = ["a-different-key-encryption-secret-0123456789"]

    with pytest.raises(ImproperlyConfigured, match="KEY_ENCRYPTION_KEY: cannot decrypt signing key"):
        signing_keys_verify()
    assert [error.id for error in signing_keys_check(databases=["default"])] == ["keys.E002"]


def test_the_system_check_leaves_the_database_alone_unless_allowed(settings, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert signing_keys_check() == []


def test_the_system_check_refuses_a_store_that_is_not_configured(settings):
    settings.KEY_STORE = "azure-keyvault"
    settings.KEY_VAULT_URL = None
    assert [error.id for error in signing_keys_check()] == ["keys.E001"]


@pytest.fixture
def made_with_one_secret(tmp_path):
    """A migrated SQLite database with a key sealed under one secret, and a way to start processes on it."""
    root = Path(__file__).resolve().parents[2]
    environment = {
        "PATH": os.environ["PATH"],
        "DEBUG": "true",
        "VAR_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "CELERY_BROKER_URL": "memory://",
        "KEY_ENCRYPTION_KEY": "the-secret-the-keys-were-made-with-0123456789",
    }

    def run(*command: str, **overrides: str) -> subprocess.CompletedProcess:
        return subprocess.run(  # noqa: S603 - our own interpreter and arguments
            [sys.executable, *command],
            cwd=root,
            env={**environment, **overrides},
            capture_output=True,
            text=True,
            timeout=120,
        )

    for step in (("manage.py", "migrate", "-v0"), ("manage.py", "rotate_keys")):
        done = run(*step)
        assert done.returncode == 0, done.stderr
    return run


WRONG_SECRET = "a-different-secret-entirely-0123456789"
REFUSAL = "ImproperlyConfigured: KEY_ENCRYPTION_KEY: cannot decrypt signing key"


def test_the_wsgi_application_refuses_to_start_with_a_wrong_secret(made_with_one_secret):
    assert made_with_one_secret("-c", "import config.wsgi").returncode == 0

    refused = made_with_one_secret("-c", "import config.wsgi", KEY_ENCRYPTION_KEY=WRONG_SECRET)

    assert refused.returncode != 0
    assert REFUSAL in refused.stderr


def test_a_celery_worker_refuses_to_start_with_a_wrong_secret(made_with_one_secret):
    refused = made_with_one_secret(
        "-m", "celery", "-A", "config", "worker", "--pool=solo", KEY_ENCRYPTION_KEY=WRONG_SECRET
    )

    assert refused.returncode != 0
    assert REFUSAL in refused.stderr


def test_the_first_migrate_does_not_warn_about_keys(made_with_one_secret, tmp_path):
    fresh = made_with_one_secret(
        "manage.py", "migrate", "-v0", DATABASE_URL=f"sqlite:///{tmp_path / 'new.db'}"
    )
    assert fresh.returncode == 0
    assert "keys.checks" not in fresh.stderr
