"""The portal forms' identity-provider field: the trusted providers offered, one chosen when alone.

Every form that names a principal's or a grant's provider (principals, grants, the access preview,
labels) offers the same choices, read per form from the configuration.
"""

from __future__ import annotations

from django import forms

from accounts.providers import provider_names


def provider_field_offer(form: forms.BaseForm, *, current: str = "") -> None:
    """Offer the trusted providers in ``form``'s provider field, chosen for the admin when there is
    only one; a stored ``current`` no longer trusted stays shown, so the form can say why it fails.

    Read per form, not at import: the trusted providers are configuration.
    """
    field = form.fields.get("provider")
    if not isinstance(field, forms.ChoiceField):
        return  # read only here
    trusted = provider_names()
    choices = [("", "---------"), *((name, name) for name in trusted)]
    if current and current not in trusted:
        choices.append((current, f"{current} (no longer trusted)"))
    field.choices = choices
    if len(trusted) == 1 and not form.initial.get("provider"):
        field.initial = trusted[0]
        form.initial["provider"] = trusted[0]
