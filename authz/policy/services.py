"""Policy as code: import and export permissions, audiences, roles, tenants and grants as one JSON document.

An import runs three steps so that a bad file changes nothing: the document is parsed into plain
entries (``parsing``), planned against what the database holds (``planner``, pure), and only then
written, set-based and in one transaction (``storage``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from django.db import IntegrityError, connection, transaction

from accounts.providers import provider_names
from authz.policy.document import MAX_ERRORS, ErrorList, PolicyError, Progress, show
from authz.policy.parsing import document_parse
from authz.policy.planner import ImportReport, policy_plan
from authz.policy.storage import PolicyWriter, change_reason, stored_policy_load


def _lock_imports() -> None:
    """Serialise imports on PostgreSQL, so two runs never plan against the same snapshot."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext('authz.policy_import'))")


def policy_import(
    *,
    document: object,
    dry_run: bool = False,
    prune: bool = False,
    actor: Any = None,
    progress: Progress | None = None,
    source: str | None = None,
) -> ImportReport:
    """Import a policy document: validate all of it, then upsert by natural key in one transaction.

    Idempotent (a second run reports no changes) and all-or-nothing (any error, in the file or
    against what is stored, raises PolicyError before anything is written). ``prune`` deletes the
    stored grants the file does not list, and nothing else. ``dry_run`` reports and writes nothing.
    ``source`` (the file's name, ``-`` for standard input) goes into the history's change reason.
    A grant names one of the trusted identity providers, or none while exactly one is trusted.
    """
    errors = ErrorList()
    parsed = document_parse(document, errors, progress, providers=provider_names())
    try:
        with transaction.atomic():
            if not dry_run:
                _lock_imports()
            stored, ids = stored_policy_load()
            plan = policy_plan(parsed, stored, prune, errors)
            errors.raise_if_any()
            plan.report.dry_run = dry_run
            if dry_run:
                return plan.report
            PolicyWriter(plan, ids, actor, progress, change_reason(source)).write()
    except IntegrityError as exc:
        # Only a concurrent writer (the portal, say) can cause this: the plan was checked.
        raise PolicyError(
            [f"policy: the database changed during the import, nothing was written ({exc})"]
        ) from exc
    return plan.report


# ---------------------------------------------------------------------------------------------
# Export: the same format back out, in a stable order.
# ---------------------------------------------------------------------------------------------


def _timestamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    text = value.astimezone(UTC).replace(tzinfo=None).isoformat()
    return text + "Z"


def policy_export() -> dict:
    """The stored policy as a document import_policy accepts; ordered so that exports diff well."""
    stored, _ids = stored_policy_load()
    features = [
        {"code": code, "description": description} for code, description in sorted(stored.features.items())
    ]
    permissions = [
        {"code": code, "description": description, "requires_feature": requires_feature}
        for code, (description, requires_feature) in sorted(stored.permissions.items())
    ]
    audiences = [
        {"id": identifier, "name": name, "permissions": sorted(codes)}
        for identifier, (name, codes) in sorted(stored.audiences.items())
    ]
    roles = [
        {"slug": slug, "name": name, "permissions": sorted(codes), "tenant": tenant}
        for (tenant, slug), (name, codes) in sorted(
            stored.roles.items(), key=lambda item: (item[0][0] or "", item[0][1])
        )
    ]
    tenants = [
        {"slug": slug, "name": name, "status": status, "features": sorted(set(features))}
        for slug, (name, status, features) in sorted(stored.tenants.items())
    ]
    errors = []
    grants = []
    for (tenant, (owner, role), subject_type, provider, subject_id), current in sorted(
        stored.grants.items(),
        key=lambda item: (item[0][0], item[0][1][1], item[0][2], item[0][3], item[0][4]),
    ):
        if owner is None and (tenant, role) in stored.roles:
            errors.append(
                f"grant {current.id}: uses the global role {show(role)}, but tenant {show(tenant)}"
                " has its own role with that slug; the file cannot tell them apart"
                " (move the grant to one of them)"
            )
        grants.append(
            {
                "tenant": tenant,
                "role": role,
                # Always written, so the file means the same once a second provider is trusted.
                "provider": provider,
                subject_type: subject_id,
                "valid_from": _timestamp(current.valid_from),
                "valid_until": _timestamp(current.valid_until),
            }
        )
    if errors:
        raise PolicyError(errors[:MAX_ERRORS], total=len(errors))
    return {
        "features": features,
        "permissions": permissions,
        "audiences": audiences,
        "roles": roles,
        "tenants": tenants,
        "grants": grants,
    }


def policy_dumps(document: dict) -> str:
    """A policy document as text: one entry a line, keys in contract order, so diffs show each change."""
    lines = ["{"]
    kinds = list(document)
    for position, kind in enumerate(kinds):
        entries = document[kind]
        comma = "," if position < len(kinds) - 1 else ""
        if not entries:
            lines.append(f"  {json.dumps(kind)}: []{comma}")
            continue
        lines.append(f"  {json.dumps(kind)}: [")
        for number, entry in enumerate(entries):
            lines.append(
                "    " + json.dumps(entry, ensure_ascii=False) + ("," if number < len(entries) - 1 else "")
            )
        lines.append(f"  ]{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"
