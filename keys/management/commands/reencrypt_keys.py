"""Re-encrypt every published signing key under the first KEY_ENCRYPTION_KEY."""

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from keys.errors import KeysError
from keys.services import signing_key_reencrypt


class Command(BaseCommand):
    help = (
        "Re-encrypt every published signing key under the first secret of KEY_ENCRYPTION_KEY. "
        "Run it after putting a new secret first in the list; then the old secrets can be dropped."
    )

    def handle(self, *args, **options):
        try:
            changed = signing_key_reencrypt()
        except (KeysError, ImproperlyConfigured) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            self.style.SUCCESS(f"Re-encrypted {changed} key(s) under the first KEY_ENCRYPTION_KEY.")
        )
