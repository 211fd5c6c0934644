"""The operator files in deploy/ agree with each other and with the settings: the Procfile's three
commands are the systemd units' commands, the example environment names only variables the issuer
reads and holds no secret, and the cluster bench's environment built from it is one production
accepts."""

from __future__ import annotations

import configparser
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cluster_stack import ENV_EXAMPLE, cluster_environment, env_file_read, procfile_commands
from tests.support.settings import CHECK_DEPLOY

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
VENV_BIN = "/srv/issuer/.venv/bin/"


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNITS / name)
    return parser


def test_the_procfile_runs_the_production_entry_point_a_worker_and_a_beat():
    commands = procfile_commands()

    assert commands == {
        "web": ["python", "-m", "config.serve"],
        "worker": ["celery", "-A", "config", "worker", "--loglevel=INFO"],
        "beat": ["celery", "-A", "config", "beat", "--loglevel=INFO"],
    }


@pytest.mark.parametrize(
    ("kind", "name"),
    [("web", "issuer-web@.service"), ("worker", "issuer-worker.service"), ("beat", "issuer-beat.service")],
)
def test_each_systemd_unit_runs_the_procfiles_command_from_the_virtualenv(kind, name):
    service = unit(name)["Service"]
    command = shlex.split(service["ExecStart"])

    assert command[0].startswith(VENV_BIN)
    assert [command[0].removeprefix(VENV_BIN), *command[1:]] == procfile_commands()[kind]
    assert service["EnvironmentFile"] == "/etc/issuer/issuer.env"


def test_the_web_unit_is_one_instance_per_port_and_there_is_one_beat():
    web = unit("issuer-web@.service")["Service"]

    assert "PORT=%i" in shlex.split(web["Environment"])
    # A plain unit, not a template: it cannot be started twice on one host by a typo in a name.
    assert sorted(path.name for path in UNITS.glob("*beat*")) == ["issuer-beat.service"]


def test_systemd_accepts_the_units(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    for path in UNITS.iterdir():
        (tmp_path / path.name.replace("@.", "@8001.")).write_text(path.read_text())
        if "@" in path.name:
            (tmp_path / path.name).write_text(path.read_text())
    units = [str(path) for path in tmp_path.iterdir() if not path.name.endswith("@.service")]

    verified = subprocess.run(  # noqa: S603
        [analyze, "verify", "--man=no", *units], capture_output=True, text=True, timeout=60
    )

    # The only complaint allowed is that /srv/issuer is not installed on this machine.
    problems = [line for line in verified.stderr.splitlines() if line and "is not executable" not in line]
    assert problems == []


def test_the_example_environment_names_only_variables_the_issuer_reads():
    read = (ROOT / "config" / "settings.py").read_text() + (ROOT / "config" / "gunicorn.py").read_text()

    unknown = [name for name in env_file_read() if f'"{name}"' not in read]

    assert unknown == []


def test_the_example_environment_holds_placeholders_not_secrets():
    values = env_file_read()

    assert values["SECRET_KEY"] == values["KEY_ENCRYPTION_KEY"] == "CHANGE_ME"
    for name in ("DATABASE_URL", "CACHE_URL", "CELERY_BROKER_URL"):
        assert re.search(r"://[^/@]*:CHANGE_ME@", values[name]), name
    assert values["DEBUG"] == "false"


def test_an_environment_with_a_placeholder_left_is_refused(tmp_path):
    with pytest.raises(ValueError, match="KEY_ENCRYPTION_KEY"):
        cluster_environment({"SECRET_KEY": "x" * 50}, example=ENV_EXAMPLE)


def test_the_example_environment_filled_in_passes_the_deploy_checks(tmp_path):
    filled = cluster_environment(
        {
            "SECRET_KEY": "x7Hq2p9Lm4Vb8Nc1Zr6Tw3Yk5Fd0Gs2Jh8Ua4Ei7Oo1Pl9Qa3Sx6Dc2Fv5Gb8Hn0Jm",
            "KEY_ENCRYPTION_KEY": "a-production-key-encryption-secret-of-40-chars",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "CACHE_URL": "rediss://:a-redis-password@redis.internal:6380/0",
            "CELERY_BROKER_URL": "rediss://:a-redis-password@redis.internal:6380/1?ssl_cert_reqs=required",
            "ENTRA_TENANT_ID": "11111111-1111-1111-1111-111111111111",
        }
    )

    checked = subprocess.run(  # noqa: S603 - our interpreter running Django's own check
        [sys.executable, "-c", CHECK_DEPLOY],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "VAR_DIR": str(tmp_path),
            "LOG_LEVEL": "ERROR",
            "DJANGO_SETTINGS_MODULE": "config.settings",
            **filled,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_cluster_benchs_environment_is_one_production_settings_accept(tmp_path):
    from bench.cluster import environment
    from tests.fake_entra import FakeEntra

    fake = FakeEntra().start()
    try:
        cluster = environment(fake=fake, redis_port=6390, work=tmp_path)
    finally:
        fake.close()

    loaded = subprocess.run(
        [sys.executable, "-c", "import config.settings as s; print(s.DEBUG, s.HTTPS, s.KEY_PUBLISH_LEAD)"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **cluster},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.split() == ["False", "False", "10"]
