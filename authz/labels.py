"""Labels of users and groups: whose labels a portal user may read and write, and the label beside an id.

A label names a subject (provider, user or group, id) for the people who read the portal; it gives
no access and is never read from a token.

- Read: a platform admin reads every label. A tenant administrator reads the label of a subject only
  while that subject holds a grant (of any period) in their tenants; every page that shows a label
  to them goes through ``subject_labels_in_scope``, so no label of anyone else reaches them.
- Write: a platform admin labels anyone. A tenant administrator labels a subject only while all of its
  grants are in their tenants. One label is shown to everyone who may read it, so a subject that is
  granted in another tenant too is labelled by a platform admin: one tenant's administrator never
  renames what another tenant's administrator reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery

from authz.models import Grant, SubjectLabel
from authz.selectors import grants_in_scope

Subject = tuple[str, str, str]  # (provider, subject type, subject id), as grants and labels name it


def _same_subject() -> dict[str, OuterRef]:
    """Lookups matching the subject of the outer row (a grant, or a label in a grant's query)."""
    return {name: OuterRef(name) for name in ("provider", "subject_type", "subject_id")}


def subject_labels_in_scope(
    *, tenant_ids: frozenset[int] | None, labels: QuerySet[SubjectLabel] | None = None
) -> QuerySet[SubjectLabel]:
    """The labels (of ``labels``, default all) a portal user scoped to ``tenant_ids`` may read.

    All of them for a platform admin (``None``); for a tenant administrator, those of subjects that
    hold a grant in their tenants.
    """
    labels = SubjectLabel.objects.all() if labels is None else labels
    if tenant_ids is None:
        return labels
    granted_here = grants_in_scope(tenant_ids=tenant_ids).filter(**_same_subject())
    return labels.filter(Exists(granted_here))


def subject_label_writable(*, tenant_ids: frozenset[int] | None, subject: Subject) -> bool:
    """Whether a portal user scoped to ``tenant_ids`` may label (or relabel, or unlabel) ``subject``."""
    if tenant_ids is None:
        return True
    provider, subject_type, subject_id = subject
    grants = Grant.objects.filter(provider=provider, subject_type=subject_type, subject_id=subject_id)
    return grants.filter(tenant_id__in=tenant_ids).exists() and not (
        grants.exclude(tenant_id__in=tenant_ids).exists()
    )


def subject_label_find(*, subject: Subject) -> SubjectLabel | None:
    """The label of ``subject``, unscoped: for a page that already showed the viewer this subject."""
    provider, subject_type, subject_id = subject
    return SubjectLabel.objects.filter(
        provider=provider, subject_type=subject_type, subject_id=subject_id
    ).first()


def subject_label_of_grant() -> Subquery:
    """An annotation: the label of the grant's subject (no scope needed: a grant one may see makes
    its subject's label readable)."""
    return Subquery(SubjectLabel.objects.filter(**_same_subject()).values("label")[:1])


def grants_labelled(text: str) -> Q:
    """A filter of grants whose subject's label contains ``text``, in any case.

    An ``IN`` over the matching labels' subject ids, which the database hashes once, narrows the rows
    before the exact match of the whole subject: a look-up per grant would cost a query per row.
    """
    labels = SubjectLabel.objects.filter(label__icontains=text)
    return Q(subject_id__in=labels.values("subject_id")) & Q(Exists(labels.filter(**_same_subject())))


def principals_labelled(text: str, *, labels: QuerySet[SubjectLabel] | None = None) -> Q:
    """A filter of principals whose label (among ``labels``, default all) contains ``text``."""
    labels = (SubjectLabel.objects.all() if labels is None else labels).filter(
        label__icontains=text, subject_type=Grant.SubjectType.USER
    )
    same = labels.filter(provider=OuterRef("provider"), subject_id=OuterRef("subject"))
    return Q(subject__in=labels.values("subject_id")) & Q(Exists(same))


def subject_label_of_principal(*, labels: QuerySet[SubjectLabel] | None = None) -> Subquery:
    """An annotation: the label of a principal (a user of its provider), among ``labels`` (default all)."""
    labels = (SubjectLabel.objects.all() if labels is None else labels).filter(
        provider=OuterRef("provider"),
        subject_type=Grant.SubjectType.USER,
        subject_id=OuterRef("subject"),
    )
    return Subquery(labels.values("label")[:1])


def subject_labels_get(
    *, tenant_ids: frozenset[int] | None, subjects: Iterable[Subject]
) -> dict[Subject, str]:
    """The labels of ``subjects`` that a portal user scoped to ``tenant_ids`` may read, in one query."""
    wanted = set(subjects)
    if not wanted:
        return {}
    match = Q()
    for provider, subject_type, subject_id in wanted:
        match |= Q(provider=provider, subject_type=subject_type, subject_id=subject_id)
    rows = subject_labels_in_scope(tenant_ids=tenant_ids).filter(match)
    return {
        (provider, subject_type, subject_id): label
        for provider, subject_type, subject_id, label in rows.values_list(
            "provider", "subject_type", "subject_id", "label"
        )
    }


def subject_label_save(*, label: SubjectLabel, by: Any) -> SubjectLabel:
    """Validate and save ``label`` (its history names ``by``)."""
    with transaction.atomic():
        label.full_clean()
        label._history_user = by  # type: ignore[attr-defined]
        label.save()
    return label
