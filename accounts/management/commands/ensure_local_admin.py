"""Create a local portal administrator on the first run and print its password once."""

import os
import secrets
import shlex
import sys
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser


def shown(path: Path) -> str:
    """``path`` as typed from the current directory: relative below it, absolute elsewhere."""
    return str(path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path)


def changepassword_command(username: str) -> str:
    """The shell line that sets a new password for ``username`` against this same setup."""
    env_file = os.environ.get("ENV_FILE")
    prefix = f"ENV_FILE={shlex.quote(env_file)} " if env_file else ""
    manage = Path(settings.BASE_DIR) / "manage.py"
    return prefix + shlex.join([shown(Path(sys.executable)), shown(manage), "changepassword", username])


class Command(BaseCommand):
    help = "Create a local superuser with a random password if there is no superuser yet."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin")

    def handle(self, *args: object, username: str, **options: object) -> None:
        User = get_user_model()
        superusers = User.objects.filter(is_superuser=True)
        existing = superusers.filter(username=username).first() or superusers.order_by("pk").first()
        if existing is not None:
            self.stdout.write(
                f"A portal administrator already exists ({existing.get_username()!r}); no new password "
                f"printed. To set one: {changepassword_command(existing.get_username())}"
            )
            return
        if User.objects.filter(username=username).exists():
            raise CommandError(f"user {username!r} exists but is not a superuser; choose --username")
        password = secrets.token_urlsafe(18)
        User.objects.create_superuser(username=username, email="", password=password)
        self.stdout.write(
            self.style.SUCCESS(
                f"Created the portal administrator. Sign in at /admin/ as {username!r} with password "
                f"{password!r} (shown only this once)."
            )
        )
