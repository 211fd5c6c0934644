"""import_policy FILE [--dry-run] [--prune]: apply a policy file (JSON; ``-`` reads stdin)."""

from __future__ import annotations

import json
import sys
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from authz.policy import KINDS, ImportReport, PolicyError, policy_import
from lib.strict_json import unique_members


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def policy_file_decode(text: str, source: str) -> object:
    """Decode a policy file, naming the line and column of malformed JSON."""
    try:
        return json.loads(text, object_pairs_hook=unique_members, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise CommandError(
            f"{source}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except (ValueError, RecursionError) as exc:
        raise CommandError(f"{source}: not valid JSON: {exc}") from None


class Command(BaseCommand):
    help = (
        "Import a policy file (permissions, audiences, roles, tenants, grants) all or nothing. "
        "Entries are upserted by natural key; --prune also deletes the grants the file does not list "
        "(only grants: nothing else is ever deleted)."
    )
    stealth_options = ("stdin",)
    progress_from = 10_000  # smaller files import in about a second: no progress lines

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="the policy file (JSON), or - for standard input")
        parser.add_argument("--dry-run", action="store_true", help="report the changes, write nothing")
        parser.add_argument("--prune", action="store_true", help="delete the grants the file does not list")
        parser.add_argument("--actor", help="the portal username the history records the changes under")

    def handle(self, *args: Any, **options: Any) -> None:
        source = options["file"]
        document = policy_file_decode(self.read(source, options.get("stdin") or sys.stdin), source)
        actor = self.actor(options.get("actor"))
        try:
            report = policy_import(
                document=document,
                dry_run=options["dry_run"],
                prune=options["prune"],
                actor=actor,
                progress=self.progress,
                source=source,
            )
        except PolicyError as exc:
            for line in exc.lines():
                self.stderr.write(line)
            raise CommandError(
                f"{source}: policy not imported ({exc.total} error{'s' if exc.total != 1 else ''}); "
                "nothing was changed"
            ) from None
        self.render(report)

    def read(self, source: str, stdin: Any) -> str:
        try:
            if source == "-":
                return stdin.read()
            with open(source, encoding="utf-8") as handle:
                return handle.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"{source}: cannot read it ({exc})") from None

    def actor(self, username: str | None) -> Any:
        if not username:
            return None
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"--actor: no user {username!r}")
        return user

    def progress(self, stage: str, done: int, total: int) -> None:
        """Print about every 10%, only for large files."""
        if total < self.progress_from:
            return
        step = max(total // 10, 1)
        last = self._progress_seen.get(stage, 0)
        if done // step > last // step or done == total:
            if done != last:
                self.stderr.write(f"{stage}: {done:,} of {total:,} ({100 * done // total}%)")
            self._progress_seen[stage] = done

    def execute(self, *args: Any, **options: Any) -> Any:
        self._progress_seen: dict[str, int] = {}
        return super().execute(*args, **options)

    def render(self, report: ImportReport) -> None:
        self.stdout.write(f"{'kind':<12} {'created':>8} {'updated':>8} {'deleted':>8} {'unchanged':>10}")
        for kind in KINDS:
            c = report.counts[kind]
            self.stdout.write(f"{kind:<12} {c.created:>8} {c.updated:>8} {c.deleted:>8} {c.unchanged:>10}")
        if report.dry_run:
            self.stdout.write("Dry run: nothing was written.")
        elif report.changes:
            self.stdout.write(self.style.SUCCESS(f"Imported: {report.changes} changes."))
        else:
            self.stdout.write("No changes: the database already matches the file.")
        if not report.pruned:
            self.stdout.write("Grants not in the file were kept (use --prune to delete them).")
