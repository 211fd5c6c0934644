#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys
from pathlib import Path


def configuration_error(exc: Exception) -> str:
    """One line for a settings error, with a hint when the development env file was forgotten."""
    message = f"configuration error: {exc}"
    # The same rule as settings.VAR_DIR; `make run` writes dev.env there.
    dev_env = Path(os.environ.get("VAR_DIR") or Path(__file__).resolve().parent / "var") / "dev.env"
    if not os.environ.get("ENV_FILE") and dev_env.is_file():
        shown = os.path.relpath(dev_env) if dev_env.is_relative_to(Path.cwd()) else str(dev_env)
        message += f"; hint: export ENV_FILE={shown} (written by make run)"
    return message


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        # Load the settings before any command does, so a missing variable is one line, not a traceback.
        settings.INSTALLED_APPS  # noqa: B018
    except ImproperlyConfigured as exc:
        print(configuration_error(exc), file=sys.stderr)
        sys.exit(2)
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
