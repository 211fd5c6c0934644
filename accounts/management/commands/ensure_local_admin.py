"""Create a local portal administrator on the first run and print its password once."""

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Create a local superuser with a random password if there is no superuser yet."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")

    def handle(self, *args, username: str, **options):
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            self.stdout.write("A portal administrator already exists; no new password printed.")
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
