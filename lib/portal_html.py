"""Compact cells for the portal's lists: a GUID shortened with a copy button, a moment as its date.

A list must fit a 1280 px screen: a whole GUID wraps over four lines and a full timestamp takes a
column's width. The whole value stays one hover (``title``) or one click (the copy button, run by
``config/static/config/portal.js``; the portal runs no inline script) away.
"""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

SHORT_HEAD, SHORT_TAIL = 8, 4


def id_shorten(value: str) -> str:
    """``2f0e3b4c-8a1d-4c5e-9f60-7b8c9d0e1f2a`` -> ``2f0e3b4c…1f2a``; a short value stays whole."""
    if len(value) <= SHORT_HEAD + SHORT_TAIL + 4:
        return value
    return f"{value[:SHORT_HEAD]}…{value[-SHORT_TAIL:]}"


def copyable_id(value: str, *, label: str, href: str | None = None, name: str | None = None) -> SafeString:
    """The shortened id, whole in its ``title``, and a button that copies it whole (named for screen readers).

    With ``href`` the id links there; the button stays outside the link (no control inside another).
    With ``name`` (a label an admin gave the subject) the name follows, cut to the column, whole in its
    ``title``: the id stays what is copied and linked.
    """
    shown = format_html('<code class="guid" title="{}">{}</code>', value, id_shorten(value))
    if href is not None:
        shown = format_html('<a href="{}">{}</a>', href, shown)
    named = format_html(' <span class="subject-label" title="{}">{}</span>', name, name) if name else ""
    return format_html(
        '<span class="copyable">{}<button type="button" class="copy-id" data-copy="{}" '
        'aria-label="Copy {} {}"></button>{}</span>',
        shown,
        value,
        label,
        value,
        named,
    )


def moment_short(value: datetime | None) -> SafeString | None:
    """A moment as its date in the portal's time zone, the whole moment in its ``title``."""
    return _moment(value, shown="%Y-%m-%d")


def moment_minute(value: datetime | None) -> SafeString | None:
    """A moment to the minute in the portal's time zone, the whole moment in its ``title``."""
    return _moment(value, shown="%Y-%m-%d %H:%M")


def _moment(value: datetime | None, *, shown: str) -> SafeString | None:
    if value is None:
        return None
    local = timezone.localtime(value)
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        value.isoformat(),
        local.strftime("%Y-%m-%d %H:%M:%S %Z"),
        local.strftime(shown),
    )


def clipped(text: str) -> SafeString:
    """A name that may be long, cut with an ellipsis by the list's style, whole in its ``title``."""
    return format_html('<span class="clip" title="{}">{}</span>', text, text)
