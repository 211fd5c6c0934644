"""The authorization model: tenants, permissions, audiences, roles and grants.

Models hold data and its integrity constraints only; the rules that use them live in
``authz.engine`` (pure) and ``authz.services`` (writes).
"""

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from simple_history.models import HistoricalRecords

# RFC 6749 scope tokens may not hold spaces or quotes; ours are stricter: lower-case dotted codes.
CODE_PATTERN = r"^[a-z0-9](?:[a-z0-9_.:-]{0,98}[a-z0-9])?$"
code_validator = RegexValidator(
    CODE_PATTERN, "Use lower-case letters, digits and . _ : - (no spaces), starting and ending alphanumeric."
)
SLUG_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?$"
slug_validator = RegexValidator(SLUG_PATTERN, "Use lower-case letters, digits and hyphens.")


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
        return f"{self.slug} ({self.tenant.slug})" if self.tenant_id else self.slug


class Grant(models.Model):
    """A role given to a user (Entra object id) or a group (Entra group id) in one tenant."""

    class SubjectType(models.TextChoices):
        USER = "user", "User"
        GROUP = "group", "Group"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="grants")
    role = models.ForeignKey(Role, on_delete=models.PROTECT, related_name="grants")
    subject_type = models.CharField(max_length=8, choices=SubjectType.choices)
    subject_id = models.CharField(
        max_length=36, help_text="The Entra object id of the user, or the Entra group id."
    )
    valid_from = models.DateTimeField(null=True, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["tenant", "role", "subject_type", "subject_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "role", "subject_type", "subject_id"], name="grant_unique_subject_role"
            ),
            models.CheckConstraint(
                condition=models.Q(valid_from__isnull=True)
                | models.Q(valid_until__isnull=True)
                | models.Q(valid_until__gt=models.F("valid_from")),
                name="grant_valid_until_after_valid_from",
            ),
        ]
        indexes = [models.Index(fields=["subject_id", "tenant"], name="grant_subject_idx")]

    def __str__(self) -> str:
        return f"{self.role.slug} for {self.subject_type} {self.subject_id} in {self.tenant.slug}"
