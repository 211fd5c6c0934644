"""Admin users of the portal and principals: the external identities we issue tokens for."""

import uuid

from django.contrib.auth.models import AbstractUser
from django.db import models


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
    """An external identity, (directory id ``tid``, object id ``oid``), with our own stable id.

    ``id`` becomes the ``sub`` of the tokens we issue, so downstream services never see the Entra
    object id and the identity provider can change without changing the subject.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tid = models.CharField("directory (tid)", max_length=64)
    oid = models.CharField("object id (oid)", max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tid", "oid"], name="principal_unique_identity")]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.oid} ({self.tid})"


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
