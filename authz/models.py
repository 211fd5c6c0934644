"""The authorization model: tenants, permissions, audiences, roles and grants.

Models hold data and its integrity constraints only; the rules that use them live in
``authz.engine`` (pure) and ``authz.services`` (writes).
"""

import re
import unicodedata
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from simple_history.models import HistoricalRecords

from accounts.providers import provider_names
from accounts.subjects import PROVIDER_MAX, SUBJECT_MAX, subject_normalise
from authz.engine import features_undeclared, role_applies_in, role_slug_clash

# RFC 6749 scope tokens may not hold spaces or quotes; ours are stricter: lower-case dotted codes.
CODE_PATTERN = r"^[a-z0-9](?:[a-z0-9_.:-]{0,98}[a-z0-9])?\Z"
code_validator = RegexValidator(
    CODE_PATTERN, "Use lower-case letters, digits and . _ : - (no spaces), starting and ending alphanumeric."
)
SLUG_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?\Z"
slug_validator = RegexValidator(SLUG_PATTERN, "Use lower-case letters, digits and hyphens.")


# An audience id is one token's ``aud``: printable ASCII without spaces (the exchange, the import and
# the portal all take exactly these).
AUDIENCE_ID = re.compile(r"[\x21-\x7e]{1,200}")


def is_audience_identifier(value: object) -> bool:
    return isinstance(value, str) and AUDIENCE_ID.fullmatch(value) is not None


class Feature(models.Model):
    """An entry of the feature catalogue: what tenants may hold and permissions may require."""

    code = models.CharField(max_length=100, unique=True, validators=[code_validator])
    description = models.CharField(max_length=500, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


def _undeclared_features_error(field: str, features: list[str]) -> None:
    catalogue = Feature.objects.values_list("code", flat=True)
    missing = features_undeclared(features=features, declared=catalogue)
    if missing:
        raise ValidationError(
            {field: f"{', '.join(missing)}: not in the feature catalogue (add it under Features first)."}
        )


class Tenant(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"

    slug = models.CharField(max_length=50, unique=True, validators=[slug_validator])
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    features = models.JSONField(default=list, blank=True, help_text="Feature codes this tenant has.")
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    def clean(self) -> None:
        """Features are a list of distinct feature codes."""
        features = self.features
        if not isinstance(features, list) or not all(isinstance(code, str) for code in features):
            raise ValidationError({"features": "Give the features as a list of feature codes."})
        for code in features:
            try:
                code_validator(code)
            except ValidationError:
                raise ValidationError(
                    {"features": f"{code!r} is not a valid feature code: {code_validator.message}"}
                ) from None
        if len(set(features)) != len(features):
            raise ValidationError({"features": "A feature is listed twice."})
        _undeclared_features_error("features", features)


class Permission(models.Model):
    code = models.CharField(max_length=100, unique=True, validators=[code_validator])
    description = models.CharField(max_length=500, blank=True)
    requires_feature = models.CharField(
        max_length=100,
        blank=True,
        validators=[code_validator],
        help_text="If set, the permission applies only in tenants that have this feature.",
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code

    def clean(self) -> None:
        """A required feature comes from the feature catalogue."""
        if self.requires_feature:
            _undeclared_features_error("requires_feature", [self.requires_feature])


class Audience(models.Model):
    """A downstream service that receives our tokens, and the permissions it may receive."""

    identifier = models.CharField(
        max_length=200, unique=True, help_text="The token's aud, for example api://orders."
    )
    name = models.CharField(max_length=200)
    permissions = models.ManyToManyField(Permission, blank=True, related_name="audiences")
    history = HistoricalRecords(m2m_fields=[permissions])

    class Meta:
        ordering = ["identifier"]

    def __str__(self) -> str:
        return self.identifier

    def clean(self) -> None:
        """The identifier is one token's ``aud``: printable, without spaces."""
        if self.identifier and not is_audience_identifier(self.identifier):
            raise ValidationError(
                {"identifier": "An audience id has no spaces or control characters, e.g. api://orders."}
            )


class Role(models.Model):
    """A named set of permissions; global, or owned by one tenant and usable only there."""

    slug = models.CharField(max_length=50, validators=[slug_validator])
    name = models.CharField(max_length=200)
    permissions = models.ManyToManyField(Permission, blank=True, related_name="roles")
    tenant = models.ForeignKey(
        Tenant,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="roles",
        help_text="Empty for a global role.",
    )
    history = HistoricalRecords(m2m_fields=[permissions])

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "slug"], name="role_unique_slug_per_tenant"),
            models.UniqueConstraint(
                fields=["slug"], condition=models.Q(tenant__isnull=True), name="role_unique_global_slug"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.slug} ({self.tenant.slug})" if self.tenant is not None else self.slug

    def clean(self) -> None:
        """Role slugs are unambiguous in tokens, and a tenant-owned role is granted only in its tenant."""
        if not self.slug:
            return
        other_owners = (
            Role.objects.exclude(pk=self.pk)
            .filter(slug=self.slug)
            .order_by("tenant__slug")
            .values_list("tenant__slug", flat=True)
        )
        owner = self.tenant.slug if self.tenant is not None else None
        clash = role_slug_clash(owner=owner, other_owners=other_owners)
        if clash is not None and owner is None and clash.with_global:
            raise ValidationError({"slug": f"A global role {self.slug!r} already exists."})
        if clash is not None and owner is None:
            raise ValidationError(
                {
                    "slug": f"Tenant(s) {', '.join(clash.tenants[:5])} already have a role {self.slug!r}; "
                    "a global role with the same slug would make the token's roles ambiguous."
                }
            )
        if clash is not None:
            raise ValidationError(
                {
                    "slug": f"A global role {self.slug!r} exists; a tenant's role may not reuse its slug "
                    "(the token's roles would be ambiguous)."
                }
            )
        if self.tenant_id is None:
            return
        if self.pk is not None:
            elsewhere = list(
                self.grants.exclude(tenant_id=self.tenant_id)
                .order_by("tenant__slug")
                .values_list("tenant__slug", flat=True)
                .distinct()[:5]
            )
            if elsewhere:
                raise ValidationError(
                    {
                        "tenant": f"This role is granted in other tenants ({', '.join(elsewhere)}); "
                        "revoke those grants before making it owned by one tenant."
                    }
                )


class Grant(models.Model):
    """A role given in one tenant to a user or a group of one identity provider.

    The subject is the provider's: an Entra directory's object id or group id, another provider's
    ``sub`` or group name. A grant matches only tokens of its provider, so the same id arriving
    from another provider gets nothing of it.
    """

    class SubjectType(models.TextChoices):
        USER = "user", "User"
        GROUP = "group", "Group"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="grants")
    role = models.ForeignKey(Role, on_delete=models.PROTECT, related_name="grants")
    subject_type = models.CharField(max_length=8, choices=SubjectType.choices)
    provider = models.CharField(
        "identity provider",
        max_length=PROVIDER_MAX,
        help_text="The identity provider of the user or group: an Entra directory id or a provider's name.",
    )
    subject_id = models.CharField(
        max_length=SUBJECT_MAX,
        help_text="The user's id (Entra object id, or the provider's sub) or the group's id.",
    )
    valid_from = models.DateTimeField(null=True, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()
    # Set before save(): simple_history writes them into the history row (annotations only, no default).
    _change_reason: str
    _history_user: Any

    class Meta:
        ordering = ["tenant", "role", "subject_type", "provider", "subject_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "role", "subject_type", "provider", "subject_id"],
                name="grant_unique_subject_role",
            ),
            models.CheckConstraint(condition=~models.Q(provider=""), name="grant_names_provider"),
            models.CheckConstraint(
                condition=models.Q(valid_from__isnull=True)
                | models.Q(valid_until__isnull=True)
                | models.Q(valid_until__gt=models.F("valid_from")),
                name="grant_valid_until_after_valid_from",
            ),
        ]
        indexes = [models.Index(fields=["subject_id", "provider", "tenant"], name="grant_subject_idx")]

    def __str__(self) -> str:
        return (
            f"{self.role.slug} for {self.subject_type} {self.subject_id} of {self.provider}"
            f" in {self.tenant.slug}"
        )

    def clean(self) -> None:
        """A trusted provider, a subject of its shape, a period not empty, a role usable in the tenant."""
        errors: dict[str, str] = {}
        trusted = provider_names()
        if not self.provider:
            errors["provider"] = "Choose the identity provider of the user or group."
        elif self.provider not in trusted:
            errors["provider"] = (
                f"{self.provider!r} is not a trusted identity provider"
                f" (trusted: {', '.join(trusted) or 'none'})."
            )
        elif self.subject_id:
            try:
                self.subject_id = subject_normalise(provider=self.provider, subject=self.subject_id)
            except ValueError as error:
                errors["subject_id"] = f"Enter the user's or group's id as its provider writes it: {error}."
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            errors["valid_until"] = "Valid until must be after valid from."
        if self.role_id is not None and not role_applies_in(
            role_tenant=self.role.tenant_id, tenant=self.tenant_id
        ):
            errors["role"] = (
                f"Role {self.role.slug!r} belongs to tenant {str(self.role.tenant)!r}; "
                "it can be granted only in that tenant."
            )
        if errors:
            raise ValidationError(errors)


class TenantAdministrator(models.Model):
    """A portal user who administers one tenant: its grants and its own roles, nothing global.

    Platform admins are superusers and need no row; every other portal user is scoped to the
    tenants they hold rows for (see ``authz.selectors.tenants_administered_by``).
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="administered_tenants"
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="administrators")
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["tenant", "user"]
        constraints = [
            models.UniqueConstraint(fields=["user", "tenant"], name="tenant_administrator_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user} administers {self.tenant.slug}"


# A label is read by people, so nothing in it may print differently from what it says: control and
# format characters (bidirectional overrides among them), separators and unassigned code points are
# refused, not stripped, so the admin sees why.
LABEL_MAX_LENGTH = 100
LABEL_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def label_normalise(value: str) -> str:
    """A label as stored: without surrounding spaces; ValueError saying why when it cannot be one."""
    text = value.strip()
    if not text:
        raise ValueError("a label cannot be empty")
    if len(text) > LABEL_MAX_LENGTH:
        raise ValueError(f"keep a label within {LABEL_MAX_LENGTH} characters")
    if any(unicodedata.category(c) in LABEL_HIDDEN_CATEGORIES for c in text):
        raise ValueError("a label cannot hold control or invisible formatting characters")
    return text


class SubjectLabel(models.Model):
    """A name admins give a user or a group of one identity provider, shown beside its id in the portal.

    Only what an admin typed: nothing is taken from tokens, so the portal keeps no personal data that
    a token carried. A label changes no one's access; the id stays the reference everywhere.
    """

    provider = models.CharField(
        "identity provider", max_length=PROVIDER_MAX, help_text="The provider that vouches for the subject."
    )
    subject_type = models.CharField(max_length=8, choices=Grant.SubjectType.choices)
    subject_id = models.CharField(
        max_length=SUBJECT_MAX,
        help_text="The user's object id (or sub), or the group's id, as grants name it.",
    )
    label = models.CharField(
        max_length=LABEL_MAX_LENGTH,
        help_text=(
            "A name for the people who read the portal, e.g. 'Finance approvers'. Shown, never trusted."
        ),
    )
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["label", "subject_id"]
        verbose_name = "label"
        constraints = [
            # The subject first: the portal looks labels up by subject id.
            models.UniqueConstraint(
                fields=["subject_id", "subject_type", "provider"], name="subject_label_unique_subject"
            ),
            models.CheckConstraint(condition=~models.Q(label=""), name="subject_label_not_empty"),
        ]

    def __str__(self) -> str:
        return self.label

    def clean(self) -> None:
        """The label is printable and short; the subject id is in its provider's stored form."""
        errors: dict[str, str] = {}
        try:
            self.label = label_normalise(self.label or "")
        except ValueError as error:
            errors["label"] = f"{str(error).capitalize()}."
        if self.provider and self.subject_id:
            try:
                self.subject_id = subject_normalise(provider=self.provider, subject=self.subject_id)
            except ValueError as error:
                errors["subject_id"] = f"Enter the id as the provider writes it: {error}."
        if errors:
            raise ValidationError(errors)
