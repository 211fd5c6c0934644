"""dev_token: Entra-shaped tokens from the local development directory, trusted only in DEBUG."""

from __future__ import annotations

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from accounts.dev_directory import DEV_CLIENT_ID, DEV_TENANT_ID, dev_key_path
from accounts.entra import TokenRejected, entra_token_validate
from tests.fake_entra import AUDIENCE, ROLE, SCOPE
from tests.support.settings import load_settings

OID = "00000000-0000-4000-8000-000000000abc"
GROUP = "00000000-0000-4000-8000-0000000000aa"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def dev_directory(fake_entra, settings, tmp_path):
    settings.DEBUG = True
    settings.ENTRA_DEV_DIRECTORY = True
    settings.VAR_DIR = tmp_path
    return settings


def dev_token(*args: str) -> str:
    out = StringIO()
    call_command("dev_token", *args, stdout=out)
    return out.getvalue().strip()


def test_it_mints_a_delegated_token_the_validator_accepts(dev_directory):
    identity = entra_token_validate(token=dev_token("--oid", OID, "--group", GROUP, "--scope", "extra"))

    assert identity.tid == DEV_TENANT_ID
    assert identity.oid == OID
    assert identity.client_id == DEV_CLIENT_ID
    assert identity.scopes == {SCOPE, "extra"}
    assert identity.groups == {GROUP}
    assert identity.app_only is False


def test_it_mints_an_app_only_token_with_the_first_required_role(dev_directory):
    identity = entra_token_validate(token=dev_token("--oid", OID, "--app-only"))

    assert identity.app_only is True
    assert identity.roles == {ROLE}


def test_it_keeps_one_key_under_var_dir_readable_only_by_its_owner(dev_directory):
    dev_token("--oid", OID)
    dev_token("--oid", OID)

    key_file = dev_key_path()
    assert key_file.parent.parent == dev_directory.VAR_DIR
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert len(list(key_file.parent.iterdir())) == 1


def test_it_uses_the_first_configured_audience(dev_directory):
    dev_directory.ENTRA_AUDIENCE = [AUDIENCE, "api://second"]

    assert entra_token_validate(token=dev_token("--oid", OID)).oid == OID


def test_the_validator_stops_trusting_the_dev_directory_when_it_is_disabled(dev_directory):
    token = dev_token("--oid", OID)

    dev_directory.ENTRA_DEV_DIRECTORY = False
    with pytest.raises(TokenRejected) as disabled:
        entra_token_validate(token=token)
    dev_directory.ENTRA_DEV_DIRECTORY, dev_directory.DEBUG = True, False
    with pytest.raises(TokenRejected) as production:
        entra_token_validate(token=token)

    assert disabled.value.check == production.value.check == "tenant"


@pytest.mark.parametrize(("debug", "enabled"), [(False, True), (True, False), (False, False)])
def test_it_refuses_to_mint_unless_debug_and_the_dev_directory_are_on(dev_directory, debug, enabled):
    dev_directory.DEBUG, dev_directory.ENTRA_DEV_DIRECTORY = debug, enabled

    with pytest.raises(CommandError, match="DEBUG=true and ENTRA_DEV_DIRECTORY=true"):
        dev_token("--oid", OID)
    assert not dev_key_path().exists()


def test_it_says_what_to_set_when_no_audience_is_configured(dev_directory):
    dev_directory.ENTRA_AUDIENCE = []

    with pytest.raises(CommandError, match="ENTRA_AUDIENCE"):
        dev_token("--oid", OID)


def test_it_says_what_to_set_when_an_app_token_has_no_role(dev_directory):
    dev_directory.ENTRA_REQUIRED_ROLES = []

    with pytest.raises(CommandError, match="--role"):
        dev_token("--oid", OID, "--app-only")


@pytest.mark.parametrize("args", [["--oid", "alice"], ["--oid", OID, "--group", "admins"]])
def test_it_refuses_ids_that_are_not_guids(dev_directory, args):
    with pytest.raises(CommandError, match="GUID"):
        dev_token(*args)


def test_manage_py_exits_non_zero_with_a_clear_message_when_refused(tmp_path):
    environment = {**os.environ, "DEBUG": "true", "ENTRA_DEV_DIRECTORY": "false", "VAR_DIR": str(tmp_path)}

    result = subprocess.run(  # noqa: S603 - our own manage.py, fixed arguments
        [sys.executable, "manage.py", "dev_token", "--oid", OID],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert "refused" in result.stderr and "ENTRA_DEV_DIRECTORY=true" in result.stderr
    assert result.stdout == ""


def test_settings_refuse_the_dev_directory_in_production():
    result = load_settings(ENTRA_DEV_DIRECTORY="true")

    assert result.returncode != 0
    assert "ENTRA_DEV_DIRECTORY" in result.stderr
