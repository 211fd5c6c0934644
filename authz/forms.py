"""Portal forms: parse what admins type into the model's shape; the models validate the invariants."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from authz.models import Tenant, code_validator


class FeatureListField(forms.CharField):
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
        text = super().to_python(value)
        codes = [code for code in re.split(r"[,\s]+", text) if code]
        return list(dict.fromkeys(codes))

    def validate(self, value: list[str]) -> None:
        if self.required and not value:
            raise ValidationError(self.error_messages["required"], code="required")

    def run_validators(self, value: list[str]) -> None:
        errors = []
        for code in value:
            try:
                code_validator(code)
            except ValidationError:
                errors.append(
                    ValidationError(
                        "%(code)r is not a valid feature code: %(hint)s",
                        code="invalid",
                        params={"code": code, "hint": code_validator.message},
                    )
                )
        if errors:
            raise ValidationError(errors)


class TenantForm(forms.ModelForm):
    """A tenant, with its features typed as a comma-separated list."""

    features = FeatureListField()

    class Meta:
        model = Tenant
        fields = ["slug", "name", "status", "features"]
