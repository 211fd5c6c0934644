"""The settings module in a fresh interpreter: a complete production environment, and ways to run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "x7Hq2p9Lm4Vb8Nc1Zr6Tw3Yk5Fd0Gs2Jh8Ua4Ei7Oo1Pl9Qa3Sx6Dc2Fv5Gb8Hn0Jm",
    "KEY_ENCRYPTION_KEY": "a-production-key-encryption-secret-of-40-chars",
    "ALLOWED_HOSTS": "issuer.example.com",
    "TOKEN_ISSUER": "https://issuer.example.com",
    "ENTRA_TENANT_ID": "11111111-1111-1111-1111-111111111111",
    "ENTRA_AUDIENCE": "api://issuer",
    "ENTRA_REQUIRED_SCOPES": "access_as_user",
}
CHECK_DEPLOY = "import sys; from django.core.management import execute_from_command_line as run; " + (
    "run(['manage.py', 'check', '--deploy', '--fail-level', 'WARNING'])"
)


def load_settings(**overrides: str | None) -> subprocess.CompletedProcess:
    """Import the settings module in a fresh interpreter with exactly this environment."""
    environment = {"PATH": os.environ["PATH"], "VAR_DIR": os.environ["VAR_DIR"], **PRODUCTION}
    for name, value in overrides.items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    return subprocess.run(
        [sys.executable, "-c", "import config.settings"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def run_in_production(code: str, **overrides: str | None) -> subprocess.CompletedProcess:
    """Run ``code`` (Django set up) in a fresh interpreter with the production environment."""
    environment = {"PATH": os.environ["PATH"], "VAR_DIR": os.environ["VAR_DIR"], **PRODUCTION}
    environment["DJANGO_SETTINGS_MODULE"] = "config.settings"
    environment["LOG_LEVEL"] = "ERROR"
    for name, value in overrides.items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    return subprocess.run(  # noqa: S603 - our interpreter running our own code
        [sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )
