"""The portal's search and smart paste: the use cases the views call, each within the user's scope."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.http import QueryDict

from authz.models import Role
from authz.search.catalogue import searchable_get
from authz.search.dates import days_number
from authz.search.interpret import (
    TARGETS,
    TENANT_STATUSES,
    VALIDITIES,
    Interpretation,
    interpret,
    target_settle,
)
from authz.search.links import LIST_FILTERS, chips, results_url
from authz.search.matching import SUBJECT, Matcher
from authz.search.paste import propose
from authz.selectors import roles_in_scope, tenants_in_scope
from lib.guid import is_guid

# The longest question and the longest pasted text taken, in characters.
QUESTION_MAX = 300
PASTE_MAX = 5000


@dataclass(frozen=True)
class SearchOutcome:
    """Where the answer is listed, and what was understood, for the page to show above the list."""

    question: str
    target: str
    filters: dict[str, Any]
    unmatched: list[str]
    mode: str
    url: str
    chips: list[dict[str, Any]] = field(default_factory=list)

    def for_page(self) -> dict[str, Any]:
        """The outcome as the list page reads it back (JSON-safe: kept in the session)."""
        return {
            "question": self.question,
            "target": self.target,
            "unmatched": self.unmatched,
            "mode": self.mode,
            "url": self.url,
            "chips": self.chips,
        }


def targets_for(tenant_ids: frozenset[int] | None) -> tuple[str, ...]:
    """The lists a user may be sent to: principals are the platform admins' alone."""
    return TARGETS if tenant_ids is None else tuple(t for t in TARGETS if t != "principals")


def search_interpret(*, tenant_ids: frozenset[int] | None, question: str, now: datetime) -> dict[str, Any]:
    """The interpretation of ``question`` as JSON: target, filters, unmatched words, and the matching mode."""
    searchable = searchable_get(tenant_ids=tenant_ids)
    reading = _interpret(question, searchable.matcher, searchable.mode, tenant_ids, now)
    return {**reading.as_json(), "mode": searchable.mode}


def search_run(
    *, tenant_ids: frozenset[int] | None, question: str, given: QueryDict | None, now: datetime
) -> SearchOutcome:
    """A search from the question, or from filters given one by one (a chip edited or removed)."""
    searchable = searchable_get(tenant_ids=tenant_ids)
    matcher = searchable.matcher
    if given is not None:
        reading = _given(given, matcher, tenant_ids)
    else:
        reading = _interpret(question, matcher, searchable.mode, tenant_ids, now)
    url, _ = results_url(target=reading.target, filters=reading.filters, tenant_ids=tenant_ids, now=now)
    labels = {
        value: found[0].names[0]
        for value in reading.filters.get(SUBJECT, [])
        if (found := matcher.named(SUBJECT, value))
    }
    return SearchOutcome(
        question=question,
        target=reading.target,
        filters=reading.filters,
        unmatched=reading.unmatched,
        mode=searchable.mode,
        url=url,
        chips=chips(reading.target, reading.filters, labels),
    )


def _interpret(
    question: str, matcher: Matcher, mode: str, tenant_ids: frozenset[int] | None, now: datetime
) -> Interpretation:
    return interpret(
        question, matcher, today=now.date(), semantic=mode == "model", targets=targets_for(tenant_ids)
    )


def _given(given: QueryDict, matcher: Matcher, tenant_ids: frozenset[int] | None) -> Interpretation:
    """Filters as the chips send them, each checked against what the user may search."""
    filters: dict[str, Any] = {}
    unmatched: list[str] = []
    for name in LIST_FILTERS:
        values = [v.strip() for raw in given.getlist(name) for v in raw.split(",") if v.strip()]
        values = [v if name in ("audience", "subject") else v.lower() for v in values]
        values = [v.lower() if name == "subject" and is_guid(v.lower()) else v for v in values]
        kept = [
            v for v in dict.fromkeys(values) if matcher.named(name, v) or (name == "subject" and is_guid(v))
        ]
        unmatched += [v for v in values if v not in kept]
        if kept:
            filters[name] = kept
    for name, allowed in (("validity", VALIDITIES), ("tenant_status", TENANT_STATUSES)):
        value = given.get(name, "").strip().lower()
        if value in allowed:
            filters[name] = value
        elif value:
            unmatched.append(value)
    days = given.get("within_days", "").strip()
    within = days_number(days)
    if within is not None and filters.get("validity") in ("expiring", "expired", "future"):
        filters["within_days"] = within
    elif days:
        unmatched.append(days)
    target = given.get("target", "grants")
    return Interpretation(target_settle(target, filters, targets_for(tenant_ids)), filters, unmatched)


def paste_propose(*, tenant_ids: frozenset[int] | None, text: str, now: datetime) -> dict[str, Any]:
    """The fields a pasted access request proposes for the add-grant form, as the page's script fills them."""
    searchable = searchable_get(tenant_ids=tenant_ids)
    proposal = propose(text, searchable.matcher, now=now, semantic=searchable.mode == "model")
    fields: dict[str, Any] = {}
    if proposal.tenant:
        tenant = tenants_in_scope(tenant_ids=tenant_ids).filter(slug=proposal.tenant).first()
        if tenant is not None:
            fields["tenant"] = {"value": str(tenant.pk), "label": str(tenant)}
    if proposal.role is not None:
        owner = proposal.role.owner
        roles = roles_in_scope(tenant_ids=tenant_ids).select_related("tenant")
        same_owner = {"tenant__slug": owner} if owner else {"tenant__isnull": True}
        role: Role | None = roles.filter(slug=proposal.role.value, **same_owner).first()
        if role is not None:
            fields["role"] = {"value": str(role.pk), "label": str(role)}
    for name in ("subject_type", "provider", "subject_id", "reason"):
        if getattr(proposal, name):
            fields[name] = getattr(proposal, name)
    for name in ("valid_from", "valid_until"):
        moment: datetime | None = getattr(proposal, name)
        if moment is not None:
            fields[f"{name}_0"] = moment.strftime("%Y-%m-%d")
            fields[f"{name}_1"] = moment.strftime("%H:%M:%S")
    return {"fields": fields, "notes": proposal.notes, "unused": proposal.unused, "mode": searchable.mode}
