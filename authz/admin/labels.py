"""The label pages (names admins give users and groups), and the principals list showing those labels.

Who may read and write which label is ``authz.labels``' rule; these classes apply it to every
queryset, permission check and write. A label's subject is fixed once saved (label another subject
with a new label), so a write is checked against the one subject it names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import smart_split, unescape_string_literal

from accounts.admin import PrincipalAdmin
from accounts.models import Principal
from accounts.provider_fields import provider_field_offer
from accounts.subjects import subject_normalise
from authz.admin.tenant_scope import TenantScopedAdmin, administered_tenant_ids
from authz.labels import (
    grants_labelled,
    principals_labelled,
    subject_label_find,
    subject_label_of_grant,
    subject_label_of_principal,
    subject_label_save,
    subject_label_writable,
    subject_labels_in_scope,
)
from authz.models import Grant, SubjectLabel
from lib.portal_html import clipped, copyable_id, moment_short

NOT_YOURS = (
    "You may label only users and groups whose grants are all in your tenants; a platform admin "
    "labels the others."
)


class SubjectLabelForm(forms.ModelForm):
    """A label and the subject it names; the provider is one of the trusted ones."""

    provider = forms.ChoiceField(label="Identity provider")
    # The signed-in user's tenants (None: a platform admin); set by the admin for each request.
    tenant_ids: frozenset[int] | None = None

    class Meta:
        model = SubjectLabel
        fields = ["provider", "subject_type", "subject_id", "label"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        provider_field_offer(self)  # absent where read only (a saved label)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.instance.pk is not None or not all(
            data.get(name) for name in ("provider", "subject_type", "subject_id")
        ):
            return data
        # The scope is checked on the id's stored form (the model's clean gives that form too).
        try:
            subject_id = subject_normalise(provider=data["provider"], subject=data["subject_id"])
        except ValueError:
            return data  # the model's own message follows
        subject = (data["provider"], data["subject_type"], subject_id)
        if not subject_label_writable(tenant_ids=self.tenant_ids, subject=subject):
            # On the id field: the uniqueness check then skips it, so whether someone outside the
            # user's tenants is labelled is never told.
            self.add_error("subject_id", NOT_YOURS)
        return data


@admin.register(SubjectLabel)
class SubjectLabelAdmin(TenantScopedAdmin):
    """Labels as ``authz.labels`` scopes them: a tenant admin reads those of subjects granted in their
    tenants and writes those whose grants are all there."""

    form = SubjectLabelForm
    write_refused = NOT_YOURS
    list_display = ("name", "subject", "provider_name", "updated")
    # The label links to its page; the id's copy button stays outside any link.
    list_display_links = None
    list_filter = ("subject_type",)
    search_fields = ("label", "subject_id")
    search_help_text = "A label, or a user's or group's id (or a part of one)."
    fields = ("provider", "subject_type", "subject_id", "label", "updated_at")

    @admin.display(description="label", ordering="label")
    def name(self, label: SubjectLabel) -> str:
        change = reverse("admin:authz_subjectlabel_change", args=[label.pk])
        return format_html('<a href="{}">{}</a>', change, clipped(label.label))

    @admin.display(description="user or group", ordering="subject_id")
    def subject(self, label: SubjectLabel) -> str:
        return copyable_id(label.subject_id, label=f"{label.subject_type} id")

    @admin.display(description="identity provider", ordering="provider")
    def provider_name(self, label: SubjectLabel) -> str:
        return copyable_id(label.provider, label="provider")

    @admin.display(description="updated at", ordering="updated_at")
    def updated(self, label: SubjectLabel) -> str | None:
        return moment_short(label.updated_at)

    def get_readonly_fields(self, request: HttpRequest, obj: SubjectLabel | None = None) -> tuple[str, ...]:
        # A saved label keeps its subject: relabelling someone else is a new label, checked anew.
        return ("updated_at",) if obj is None else ("provider", "subject_type", "subject_id", "updated_at")

    def get_fields(self, request: HttpRequest, obj: SubjectLabel | None = None) -> tuple[str, ...]:
        return self.fields[:-1] if obj is None else self.fields

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        return type(form.__name__, (form,), {"tenant_ids": administered_tenant_ids(request)})

    def scope_queryset(self, queryset: QuerySet[SubjectLabel], ids: frozenset[int]) -> QuerySet[SubjectLabel]:
        return subject_labels_in_scope(tenant_ids=ids, labels=queryset)

    def visible(self, ids: frozenset[int], obj: SubjectLabel) -> bool:
        return subject_labels_in_scope(tenant_ids=ids).filter(pk=obj.pk).exists()

    def writable(self, ids: frozenset[int], obj: SubjectLabel) -> bool:
        # Writable implies readable: the subject holds a grant in ``ids``, so its label is in scope.
        subject = (obj.provider, obj.subject_type, obj.subject_id)
        return subject_label_writable(tenant_ids=ids, subject=subject)

    def save_model(self, request: HttpRequest, obj: SubjectLabel, form: Any, change: bool) -> None:
        # Whatever the form let through: the subject saved must be one the user may label.
        self.check_write(request, obj)
        subject_label_save(label=obj, by=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[SubjectLabel]) -> None:
        # The list shows labels the user may read; each deleted must be one they may write.
        for label in queryset:
            self.check_write(request, label)
        super().delete_queryset(request, queryset)


def search_with_labels(
    search: Callable[[str], tuple[QuerySet[Any], bool]],
    queryset: QuerySet[Any],
    search_term: str,
    labelled: Callable[[str], Q],
) -> tuple[QuerySet[Any], bool]:
    """Django's admin search where a word may also match a label: each word of ``search_term`` must
    match the admin's search fields (``search``, Django's own rules, quotes included) or the label."""
    found = queryset
    for word in smart_split(search_term):
        quoted = len(word) > 1 and word[0] in "\"'" and word[0] == word[-1]
        by_fields, _ = search(word)
        found = found.filter(
            Q(pk__in=by_fields.values("pk")) | labelled(unescape_string_literal(word) if quoted else word)
        )
    return found, False


class GrantLabels:
    """The grant pages' side of labels: each grant carries its subject's label, listed, searched and
    shown on its form with a link to label the subject."""

    def get_queryset(self, request: HttpRequest) -> QuerySet[Grant]:
        return super().get_queryset(request).annotate(subject_label=subject_label_of_grant())  # type: ignore[misc]

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Grant], search_term: str
    ) -> tuple[QuerySet[Grant], bool]:
        fields = super().get_search_results  # type: ignore[misc]
        return search_with_labels(
            lambda word: fields(request, queryset, word), queryset, search_term, grants_labelled
        )

    @admin.display(description="label")
    def subject_label_shown(self, grant: Grant) -> str | None:
        if grant.pk is None:
            return None  # shown as the admin's empty value
        # The grant is one the user may view, so its subject's label is one they may read.
        found = subject_label_find(subject=(grant.provider, grant.subject_type, grant.subject_id))
        if found is None:
            params = urlencode(
                {
                    "provider": grant.provider,
                    "subject_type": grant.subject_type,
                    "subject_id": grant.subject_id,
                }
            )
            add = reverse("admin:authz_subjectlabel_add")
            return format_html('<a href="{}?{}">Label this {}</a>', add, params, grant.subject_type)
        change = reverse("admin:authz_subjectlabel_change", args=[found.pk])
        return format_html(
            '{} <a href="{}" aria-label="Open the label {}">Open</a>', found.label, change, found.label
        )


class LabelledPrincipalAdmin(PrincipalAdmin):
    """The principals list of ``accounts`` with each principal's label beside its subject.

    Registered here because labels are ``authz``'s and ``accounts`` never imports ``authz``.
    """

    def get_list_display(self, request: HttpRequest) -> Any:
        shown = list(super().get_list_display(request))
        at = shown.index("subject_id") if "subject_id" in shown else len(shown)
        shown[at : at + 1] = ["labelled_subject"]
        return shown

    def get_queryset(self, request: HttpRequest) -> QuerySet[Principal]:
        labels = subject_labels_in_scope(tenant_ids=administered_tenant_ids(request))
        return super().get_queryset(request).annotate(subject_label=subject_label_of_principal(labels=labels))

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Principal], search_term: str
    ) -> tuple[QuerySet[Principal], bool]:
        labels = subject_labels_in_scope(tenant_ids=administered_tenant_ids(request))
        return search_with_labels(
            lambda word: super(LabelledPrincipalAdmin, self).get_search_results(request, queryset, word),
            queryset,
            search_term,
            lambda text: principals_labelled(text, labels=labels),
        )

    @admin.display(description="subject (oid or sub)", ordering="subject")
    def labelled_subject(self, principal: Any) -> str:
        return copyable_id(principal.subject, label="subject", name=principal.subject_label)


admin.site.unregister(Principal)
admin.site.register(Principal, LabelledPrincipalAdmin)
