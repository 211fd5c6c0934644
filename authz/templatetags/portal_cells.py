"""Template filters for the portal's home page: subjects, keys and moments drawn as the lists draw them."""

from __future__ import annotations

from datetime import datetime, timedelta

from django import template
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from authz.dashboard import PrincipalSeen, SubjectShown
from lib.portal_html import copyable_id, moment_minute

register = template.Library()


@register.filter
def subject_cell(subject: SubjectShown, grant_id: int | None = None) -> SafeString:
    """``user 2f0e3b4c…1f2a [copy] Finance approvers``: the type, the shortened id (linked to the
    grant ``grant_id`` when given) and its label."""
    href = None if grant_id is None else reverse("admin:authz_grant_change", args=[grant_id])
    return format_html(
        '<span class="subject-type" title="of the identity provider {}">{}</span> {}',
        subject.provider,
        subject.subject_type,
        copyable_id(subject.subject_id, label=f"{subject.subject_type} id", href=href, name=subject.label),
    )


@register.filter
def principal_cell(principal: PrincipalSeen) -> SafeString:
    """The principal's subject, linked to its page, with its label."""
    change = reverse("admin:accounts_principal_change", args=[principal.principal_id])
    return copyable_id(principal.subject, label="subject", href=change, name=principal.label)


@register.filter
def key_cell(kid: str) -> SafeString:
    return copyable_id(kid, label="key id")


@register.filter
def minute(value: datetime | None) -> SafeString | None:
    return moment_minute(value)


@register.filter
def clock_time(value: datetime, now: datetime) -> SafeString:
    """A moment of the last day as its time ("yesterday 15:00" before today), whole in its ``title``."""
    local, today = timezone.localtime(value), timezone.localtime(now).date()
    shown = local.strftime("%H:%M") if local.date() == today else f"{local:%Y-%m-%d %H:%M}"
    if local.date() == today - timedelta(days=1):
        shown = f"yesterday {local:%H:%M}"
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        value.isoformat(),
        local.strftime("%Y-%m-%d %H:%M:%S %Z"),
        shown,
    )
