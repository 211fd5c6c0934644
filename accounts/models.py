"""Admin users of the portal and principals: the external identities we issue tokens for."""

import uuid

from django.contrib.auth.models import AbstractUser
from django.db import models

from accounts.subjects import PROVIDER_MAX, SUBJECT_MAX


class User(AbstractUser):
    """A portal user (an administrator), not a token subject.

    Users who sign in with Entra are identified by (``entra_tid``, ``entra_oid``) from the verified
    ID token, never by email or name (both can be changed by the person or reused by the directory);
    local (password) users leave both empty.
    """

    entra_tid = models.CharField(
        "Entra directory (tid)", max_length=64, blank=True, default="", editable=False
    )
    entra_oid = models.CharField(
        "Entra object id (oid)", max_length=64, blank=True, default="", editable=False
    )

    class Meta(AbstractUser.Meta):
        # Everyone who signs in to the portal: platform admins and tenant administrators.
        verbose_name = "staff user"
        verbose_name_plural = "staff users"
        constraints = [
            models.UniqueConstraint(
                fields=["entra_tid", "entra_oid"],
                condition=~models.Q(entra_oid=""),
                name="user_unique_entra_identity",
            ),
            models.CheckConstraint(
                condition=models.Q(entra_tid="", entra_oid="")
                | (~models.Q(entra_tid="") & ~models.Q(entra_oid="")),
                name="user_entra_identity_complete",
            ),
        ]


class Principal(models.Model):
    """An external identity, (``provider``, ``subject``), with our own stable id.

    ``provider`` names the identity provider that vouched for the subject: for a directory trusted
    through the ``ENTRA_*`` settings its directory id (``tid``), whose subjects are object ids
    (``oid``); for a declared provider its name. The same subject from two providers is two people.
    ``id`` becomes the ``sub`` of the tokens we issue, so downstream services never see the
    provider's subject and the provider can change without changing the subject.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    provider = models.CharField("identity provider", max_length=PROVIDER_MAX)
    subject = models.CharField("subject (oid or sub)", max_length=SUBJECT_MAX)
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "subject"], name="principal_unique_identity")
        ]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.subject} ({self.provider})"


class ProviderKeySet(models.Model):
    """The last keys fetched from one directory of an identity provider, shared by every worker.

    A worker that starts while Entra is unreachable verifies with these, up to
    ``ENTRA_KEYS_MAX_STALE`` after ``fetched_at``. Only the public members of the keys that passed
    the JWKS rules are kept, and they are parsed by the same rules again before use.
    """

    authority = models.CharField(max_length=255)
    tid = models.CharField("directory (tid)", max_length=64)
    jwks = models.JSONField("JWKS (public keys)")
    fetched_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["authority", "tid"], name="provider_key_set_unique_directory")
        ]

    def __str__(self) -> str:
        return f"{self.tid} ({self.authority})"
