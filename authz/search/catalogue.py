"""The catalogue a portal user may search, read from the database and kept until it changes.

A platform admin searches everything. A tenant administrator searches only what the portal shows
them (``authz.selectors``): their tenants, the roles usable there, the audiences their roles
reach, every permission (they read the catalogue to build roles) and the labels of the subjects
granted in their tenants. What they may not see is never put in their matcher, so no match,
fuzzy or semantic, and no count of matches can tell them about another tenant.

Each matcher is kept per scope and rebuilt when the catalogue's fingerprint moves: the newest
history row of each model (every portal write and import leaves one) and the size and newest
link of the role and audience permission tables. The model's word vectors are remembered by word,
so a rebuild embeds only new words.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.db.models import QuerySet

from authz.labels import subject_labels_in_scope
from authz.models import Audience, Grant, Permission, Role, SubjectLabel, Tenant
from authz.search.matching import AUDIENCE, PERMISSION, ROLE, SUBJECT, TENANT, Item, Matcher
from authz.search.model import Neighbours, model_get
from authz.selectors import audiences_in_scope, roles_in_scope, tenants_in_scope

# Scopes kept at once: one per set of tenants searched lately (most tenant admins hold one tenant).
SCOPES_KEPT = 64
# The kinds whose words the model compares by meaning; names of tenants and people are not words.
SEMANTIC_KINDS = (PERMISSION, AUDIENCE, ROLE)


@dataclass(frozen=True)
class Searchable:
    """A scope's matcher and how it matches: ``mode`` is "model" or "lexical"."""

    matcher: Matcher
    mode: str


_kept: OrderedDict[tuple, Searchable] = OrderedDict()
_lock = threading.Lock()


def catalogue_fingerprint(*, scoped: bool) -> tuple:
    """What moves when anything searchable changes; ``scoped`` adds the grants (labels in scope follow
    them). One statement."""
    models = [Tenant, Role, Permission, Audience, SubjectLabel, *([Grant] if scoped else [])]
    parts = [f"(SELECT MAX(history_id) FROM {m.history.model._meta.db_table})" for m in models]  # type: ignore[attr-defined]
    for through in (Role.permissions.through, Audience.permissions.through):
        table = through._meta.db_table
        parts += [f"(SELECT COUNT(*) FROM {table})", f"(SELECT MAX(id) FROM {table})"]
    with connection.cursor() as cursor:
        # Only model table names are formatted in; there are no values.
        cursor.execute("SELECT " + ", ".join(parts))
        return tuple(cursor.fetchone() or ())


def searchable_get(*, tenant_ids: frozenset[int] | None) -> Searchable:
    """The matcher of a scope (``None``: everything), built again only if the catalogue changed."""
    mode = "model" if settings.PORTAL_SEARCH_MATCHING == "model" and model_get() is not None else "lexical"
    key = (tenant_ids, mode, catalogue_fingerprint(scoped=tenant_ids is not None))
    with _lock:
        found = _kept.get(key)
        if found is not None:
            _kept.move_to_end(key)
            return found
    built = Searchable(_matcher(tenant_ids, mode), mode)
    with _lock:
        stale = [k for k in _kept if k[0] == tenant_ids]
        for old in stale:
            del _kept[old]
        _kept[key] = built
        while len(_kept) > SCOPES_KEPT:
            _kept.popitem(last=False)
    return built


def searchable_forget() -> None:
    """Drops every kept matcher: the next search of each scope reads the catalogue again."""
    with _lock:
        _kept.clear()


def catalogue_items(*, tenant_ids: frozenset[int] | None) -> list[Item]:
    """Everything the scope may search, as the matcher's items."""
    items = [Item(TENANT, t.slug, (t.slug, t.name)) for t in tenants_in_scope(tenant_ids=tenant_ids)]
    roles = roles_in_scope(tenant_ids=tenant_ids)
    role_codes = _codes(Role.permissions.through.objects.filter(role__in=roles), "role_id")
    items += [
        Item(ROLE, slug, (slug, name), role_codes.get(pk, ()), owner or "")
        for pk, slug, name, owner in roles.values_list("pk", "slug", "name", "tenant__slug")
    ]
    items += [
        Item(PERMISSION, code, (code, text))
        for code, text in Permission.objects.values_list("code", "description")
    ]
    audiences = audiences_in_scope(tenant_ids=tenant_ids)
    audience_codes = _codes(
        Audience.permissions.through.objects.filter(audience__in=audiences), "audience_id"
    )
    items += [
        Item(AUDIENCE, identifier, (identifier, name), audience_codes.get(pk, ()))
        for pk, identifier, name in audiences.values_list("pk", "identifier", "name")
    ]
    labels = subject_labels_in_scope(tenant_ids=tenant_ids)
    items += [
        Item(SUBJECT, subject_id, (label,), (provider, subject_type))
        for provider, subject_type, subject_id, label in labels.values_list(
            "provider", "subject_type", "subject_id", "label"
        )
    ]
    return items


def _codes(links: QuerySet, owner: str) -> dict[int, tuple[str, ...]]:
    """The permission codes of each role or audience (``owner`` the link's column), sorted."""
    codes: dict[int, list[str]] = {}
    for owner_id, code in links.values_list(owner, "permission__code"):
        codes.setdefault(owner_id, []).append(code)
    return {owner_id: tuple(sorted(found)) for owner_id, found in codes.items()}


def _matcher(tenant_ids: frozenset[int] | None, mode: str) -> Matcher:
    matcher = Matcher.build(catalogue_items(tenant_ids=tenant_ids))
    model = model_get() if mode == "model" else None
    if model is not None:
        matcher.neighbours = Neighbours(model, matcher.terms(SEMANTIC_KINDS))
    return matcher
