"""Portal forms: parse what admins type into the model's shape; the models validate the invariants."""

from __future__ import annotations

import re
from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from accounts.provider_fields import provider_field_offer
from accounts.providers import provider_names
from accounts.subjects import SUBJECT_MAX, subject_normalise
from authz.models import Audience, Grant, Tenant, code_validator
from authz.portal import REASON_MAX_LENGTH
from lib.guid import GUID_EXAMPLE


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


PROVIDER_HELP = "Who vouches for the user or group: an Entra directory (by its id) or a provider's name."


class GrantForm(forms.ModelForm):
    """A grant as an admin gives it: the provider is one of the trusted ones (the model checks the rest)."""

    provider = forms.ChoiceField(label="identity provider", help_text=PROVIDER_HELP)

    class Meta:
        model = Grant
        fields = [
            "tenant",
            "role",
            "subject_type",
            "provider",
            "subject_id",
            "valid_from",
            "valid_until",
            "reason",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        provider_field_offer(self, current=self.instance.provider)


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
    """Whom to preview: a provider's user, the groups a token would carry, a tenant and an audience."""

    # Optional while exactly one provider is trusted, so links written before there were several work.
    provider = forms.ChoiceField(label="Identity provider", help_text=PROVIDER_HELP, required=False)
    subject_id = forms.CharField(
        label="User id (oid or sub)",
        max_length=SUBJECT_MAX,
        widget=forms.TextInput(attrs={"size": 40}),
        help_text=f"The user's id as the provider writes it: an Entra object id, {GUID_HINT}, or a sub.",
    )
    group_ids = forms.CharField(
        label="Group ids",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 80}),
        help_text="The group ids the token would carry, separated by commas or spaces.",
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
        provider_field_offer(self)
        # self.fields holds plain Fields to the type checker; these are the ModelChoiceFields above.
        cast(forms.ModelChoiceField, self.fields["tenant"]).queryset = tenants.order_by("slug")
        cast(forms.ModelChoiceField, self.fields["audience"]).queryset = audiences.order_by("identifier")

    def clean(self) -> dict[str, Any]:
        """The user's and the groups' ids take the shape of the chosen provider's."""
        data = super().clean() or {}
        provider = data.get("provider")
        if "provider" in data and not provider:
            trusted = provider_names()
            if len(trusted) != 1:
                several = "several are trusted" if trusted else "none is trusted here"
                self.add_error("provider", f"Choose the identity provider of the user: {several}.")
                return data
            provider = data["provider"] = trusted[0]
        if not provider:
            return data
        if "subject_id" in data:
            try:
                data["subject_id"] = subject_normalise(provider=provider, subject=data["subject_id"])
            except ValueError as error:
                self.add_error("subject_id", f"Enter the user's id as the provider writes it: {error}.")
        if "group_ids" in data:
            try:
                data["group_ids"] = self._groups(provider, data["group_ids"])
            except ValidationError as error:
                self.add_error("group_ids", error)
        return data

    @staticmethod
    def _groups(provider: str, text: str) -> list[str]:
        groups: list[str] = []
        for value in (value for value in re.split(r"[,\s]+", text) if value):
            try:
                groups.append(subject_normalise(provider=provider, subject=value))
            except ValueError as error:
                raise ValidationError(f"{value[:40]!r} is not a group id of the provider: {error}.") from None
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
