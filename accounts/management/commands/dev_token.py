"""Mint an Entra-shaped access token from the local development directory (DEBUG only)."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.dev_directory import DEV_TENANT_ID, DevDirectoryDisabled, DevTokenRequest, dev_token_create
from lib.guid import GUID_EXAMPLE, is_guid


class Command(BaseCommand):
    help = (
        "Print an Entra-shaped access token from the development directory "
        f"(tid {DEV_TENANT_ID}). Needs DEBUG=true and ENTRA_DEV_DIRECTORY=true."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--oid", required=True, help="the user's (or app's) object id, a GUID")
        parser.add_argument("--group", action="append", default=[], help="a group id (repeatable)")
        parser.add_argument("--app-only", action="store_true", help="an application token (roles, no scp)")
        parser.add_argument("--role", action="append", default=[], help="an app role (repeatable)")
        parser.add_argument("--scope", action="append", default=[], help="an extra delegated scope")

    def handle(self, *args: object, **options: object) -> None:
        oid = str(options["oid"]).lower()
        groups = [str(group).lower() for group in options["group"]]  # type: ignore[attr-defined]
        if not is_guid(oid):
            raise CommandError(f"--oid: expected a GUID such as {GUID_EXAMPLE}")
        if not all(is_guid(group) for group in groups):
            raise CommandError("--group: expected GUIDs (Entra group object ids)")
        request = DevTokenRequest(
            oid=oid,
            groups=tuple(groups),
            app_only=bool(options["app_only"]),
            roles=tuple(options["role"]),  # type: ignore[arg-type]
            scopes=tuple(options["scope"]),  # type: ignore[arg-type]
        )
        try:
            token = dev_token_create(request=request, now=time.time())
        except DevDirectoryDisabled as exc:
            raise CommandError(f"refused: {exc}") from None
        self.stdout.write(token)
