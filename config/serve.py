"""The production web server: ``python -m config.serve`` (settings from the environment).

It replaces itself (``exec``) with gunicorn running ``config.wsgi:application`` under
``config/gunicorn.py``, the one place where the server is configured: bind address and port
(``BIND_HOST``, ``PORT``), workers (``WEB_CONCURRENCY``), worker class, timeouts and logs. Being
replaced rather than wrapped, it leaves gunicorn's master as the process that systemd, a container
runtime or a supervisor signals: ``SIGTERM`` drains in-flight requests, ``SIGKILL`` stops at once.

Before that it refuses ``DEBUG=true`` (development is ``make run``), runs from the repository root
whatever the working directory, and, when ``PROMETHEUS_MULTIPROC_DIR`` is not set, gives the
workers one of their own under ``VAR_DIR`` (per port, so several servers on one host never add
each other's counts). Arguments are handed to gunicorn (``--workers 4`` for a bench); the
environment is the way to configure production.

It imports no project app: settings are checked by the preloaded app, in gunicorn's master, before
any worker forks.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from lib.env import Env

BASE_DIR = Path(__file__).resolve().parent.parent
CONFIG = BASE_DIR / "config" / "gunicorn.py"
APPLICATION = "config.wsgi:application"


def serve_command(argv: Sequence[str], *, python: str = sys.executable) -> list[str]:
    """gunicorn's command line: this interpreter's gunicorn, our configuration, our application."""
    return [python, "-m", "gunicorn", "--config", str(CONFIG), *argv, APPLICATION]


def serve_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment gunicorn gets; raises ImproperlyConfigured for what production refuses."""
    env = Env(environ)
    if env.bool("DEBUG", False):
        raise ImproperlyConfigured(
            "DEBUG: config.serve is the production server; use `make run` for development"
        )
    port = env.int("PORT", 8000, minimum=1, maximum=65535)
    served = dict(environ)
    served.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    if env.raw("PROMETHEUS_MULTIPROC_DIR") is None:
        var_dir = Path(env.str("VAR_DIR") or BASE_DIR / "var")
        served["PROMETHEUS_MULTIPROC_DIR"] = str(var_dir / "metrics" / str(port))
    return served


def main(argv: Sequence[str] | None = None) -> None:
    try:
        environment = serve_environment(os.environ)
    except ImproperlyConfigured as refused:
        sys.exit(f"config.serve: {refused}")
    os.chdir(BASE_DIR)
    command = serve_command(sys.argv[1:] if argv is None else argv)
    sys.stdout.flush()
    os.execve(command[0], command, environment)  # noqa: S606 - our interpreter running gunicorn


if __name__ == "__main__":
    main()
