"""export_policy [FILE]: write the stored policy in import_policy's format (stdout by default)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from authz.policy import PolicyError, policy_dumps, policy_export


class Command(BaseCommand):
    help = "Export permissions, audiences, roles, tenants and grants as a policy file, in a stable order."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", nargs="?", default="-", help="where to write it (default: - for stdout)")

    def handle(self, *args: Any, file: str, **options: Any) -> None:
        try:
            text = policy_dumps(policy_export())
        except PolicyError as exc:
            for line in exc.lines():
                self.stderr.write(line)
            raise CommandError("policy not exported: the stored policy cannot be written as a file") from None
        if file == "-":
            self.stdout.write(text, ending="")
            return
        try:
            with open(file, "w", encoding="utf-8") as handle:
                handle.write(text)
        except OSError as exc:
            raise CommandError(f"{file}: cannot write it ({exc})") from None
        self.stderr.write(f"Exported the policy to {file}.")
