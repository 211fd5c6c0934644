"""Run the key-rotation policy now, start a rotation early, or revoke a key."""

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from keys.checks import signing_keys_verify
from keys.errors import KeysError
from keys.services import signing_key_revoke, signing_key_rotate


class Command(BaseCommand):
    help = (
        "Apply the rotation policy now (bootstraps a first key). --force starts a rotation that is not "
        "due: the successor is published and signs after KEY_PUBLISH_LEAD. --revoke KID removes a key "
        "from the JWKS at once and signs with another."
    )

    def add_arguments(self, parser):
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--force", action="store_true", help="start a rotation that is not due")
        group.add_argument("--revoke", metavar="KID", help="revoke this key at once")

    def handle(self, *args, force: bool, revoke: str | None, **options):
        try:
            if revoke is not None:
                # Revoking needs no private material: a corrupt or rogue row, even a wrong secret,
                # must never stand in the way of taking a key out of the JWKS.
                signing_key_revoke(kid=revoke)
                self.stdout.write(self.style.SUCCESS(f"Revoked {revoke}; it is no longer published."))
                return
            signing_keys_verify()
            result = signing_key_rotate(force=force)
        except (KeysError, ImproperlyConfigured) as exc:
            raise CommandError(str(exc)) from None
        if not result.changed:
            self.stdout.write("Nothing due: the keys are as the policy wants them.")
        for label, kids in (
            ("created", result.created),
            ("activated", result.activated),
            ("retired", result.retired),
        ):
            for kid in kids:
                self.stdout.write(self.style.SUCCESS(f"{label} {kid}"))
        if result.jwks_version is not None:
            self.stdout.write(f"published JWKS version {result.jwks_version}")
