"""manage.py: a settings error is one line on stderr, with the fix when the dev env file was forgotten."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def manage(*args: str, var_dir: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    """manage.py in a fresh terminal: nothing set but VAR_DIR and ``variables``."""
    environment = {"PATH": os.environ["PATH"], "VAR_DIR": str(var_dir), **variables}
    return subprocess.run(  # noqa: S603 - our own manage.py
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_forgotten_env_file_is_one_line_that_says_what_to_export(tmp_path):
    (tmp_path / "dev.env").write_text("DEBUG=true\n")

    result = manage("import_policy", "docs/example-policy.json", var_dir=tmp_path)

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "configuration error: SECRET_KEY: required when DEBUG=false; "
        f"hint: export ENV_FILE={tmp_path / 'dev.env'} (written by make run)"
    ]


def test_without_a_dev_env_file_the_line_carries_no_hint(tmp_path):
    result = manage("check", var_dir=tmp_path)

    assert result.returncode == 2
    assert result.stderr.splitlines() == ["configuration error: SECRET_KEY: required when DEBUG=false"]


def test_with_the_env_file_exported_the_command_runs(tmp_path):
    (tmp_path / "dev.env").write_text("DEBUG=true\n")

    result = manage("check", var_dir=tmp_path, ENV_FILE=str(tmp_path / "dev.env"))

    assert result.returncode == 0, result.stderr
