"""Portal forms: parse what admins type into the model's shape; the models validate the invariants."""

from __future__ import annotations

import re
from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from authz.models import Audience, Tenant, code_validator
from authz.portal import REASON_MAX_LENGTH
from lib.guid import GUID_EXAMPLE, guid_normalise


class FeatureListField(forms.Field):
    """Feature codes typed comma-separated (or one per line), cleaned into a list of distinct codes."""

    default_help_text = "Feature codes separated by commas, for example: exports, audit-log"

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("help_text", self.default_help_text)
        kwargs.setdefault("widget", forms.TextInput(attrs={"size": 80}))
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list):
            return ", ".join(str(code) for code in value)
        return value

    def to_python(self, value: Any) -> list[str]:
        if isinstance(value, list):
            return value
        text = "" if value in self.empty_values else str(value)
        codes = [code for code in re.split(r"[,\s]+", text) if code]
        return list(dict.fromkeys(codes))

    def validate(self, value: list[str]) -> None:
        if self.required and not value:
            raise ValidationError(self.error_messages["required"], code="required")


class TenantForm(forms.ModelForm):
    """A tenant, with its features typed as a comma-separated list."""

    features = FeatureListField()

    class Meta:
        model = Tenant
        fields = ["slug", "name", "status", "features"]


# Entra puts at most 200 groups in a token before it signals overage instead.
MAX_PREVIEW_GROUPS = 200
GUID_HINT = f"e.g. {GUID_EXAMPLE}"


def _reason_field() -> forms.CharField:
    return forms.CharField(
        max_length=REASON_MAX_LENGTH,
        widget=forms.TextInput(attrs={"size": 80}),
        help_text="Kept in each grant's history, with your name.",
    )


class RevokeGrantsForm(forms.Form):
    """The reason for ending the chosen grants now."""

    reason = _reason_field()


class ExtendGrantsForm(forms.Form):
    """The new end of the chosen grants, and why."""

    valid_until = forms.DateTimeField(
        label="New valid until",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="In the portal's time zone. Grants that already end later, or never, keep their end.",
    )
    reason = _reason_field()


class AccessPreviewForm(forms.Form):
    """Whom to preview: an Entra object id, the groups a token would carry, a tenant and an audience."""

    subject_id = forms.CharField(
        label="Entra object id (oid)",
        max_length=36,
        widget=forms.TextInput(attrs={"size": 40}),
        help_text=f"The user's object id, {GUID_HINT}.",
    )
    group_ids = forms.CharField(
        label="Group ids",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 80}),
        help_text="The Entra group ids the token would carry, separated by commas or spaces.",
    )
    groups_overage = forms.BooleanField(
        label="The token signals group overage",
        required=False,
        help_text="Past 200 groups Entra sends a link instead of the list; group grants then cannot apply.",
    )
    tenant = forms.ModelChoiceField(queryset=Tenant.objects.none(), to_field_name="slug")
    audience = forms.ModelChoiceField(queryset=Audience.objects.none(), to_field_name="identifier")
    scope = forms.CharField(
        label="Requested scope",
        required=False,
        max_length=2000,
        widget=forms.TextInput(attrs={"size": 80}),
        help_text="Optional: permission codes separated by spaces, as a client would down-scope.",
    )

    def __init__(
        self, *args: Any, tenants: QuerySet[Tenant], audiences: QuerySet[Audience], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        # self.fields holds plain Fields to the type checker; these are the ModelChoiceFields above.
        cast(forms.ModelChoiceField, self.fields["tenant"]).queryset = tenants.order_by("slug")
        cast(forms.ModelChoiceField, self.fields["audience"]).queryset = audiences.order_by("identifier")

    def clean_subject_id(self) -> str:
        try:
            return guid_normalise(self.cleaned_data["subject_id"])
        except ValueError:
            raise ValidationError(f"Enter the object id as a GUID, {GUID_HINT}.") from None

    def clean_group_ids(self) -> list[str]:
        values = [value for value in re.split(r"[,\s]+", self.cleaned_data["group_ids"]) if value]
        groups: list[str] = []
        for value in values:
            try:
                groups.append(guid_normalise(value))
            except ValueError:
                raise ValidationError(f"{value[:40]!r} is not a group id; give GUIDs, {GUID_HINT}.") from None
        groups = list(dict.fromkeys(groups))
        if len(groups) > MAX_PREVIEW_GROUPS:
            raise ValidationError(
                f"A token carries at most {MAX_PREVIEW_GROUPS} groups; past that, tick group overage."
            )
        return groups

    def clean_scope(self) -> list[str] | None:
        codes = self.cleaned_data["scope"].split()
        if not codes:
            return None
        for code in codes:
            try:
                code_validator(code)
            except ValidationError:
                raise ValidationError(f"{code[:40]!r} is not a permission code.") from None
        return list(dict.fromkeys(codes))
