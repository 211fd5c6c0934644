"""Signing keys and the JWKS documents published from them.

Models hold data and integrity constraints only; the rotation rules live in ``keys.engine`` and
are applied by ``keys.services``. A key's private material is opaque here: ``store_reference`` is
what its key store needs to sign (for the local store, the AES-GCM sealed private key).
"""

from django.db import models
from simple_history.models import HistoricalRecords

from keys import engine
from lib.jwa import SIGNING_ALGORITHMS


class SigningKey(models.Model):
    class Phase(models.TextChoices):
        PENDING = engine.PENDING, "Pending (published, not signing yet)"
        ACTIVE = engine.ACTIVE, "Active (signing)"
        RETIRING = engine.RETIRING, "Retiring (published, verify only)"
        RETIRED = engine.RETIRED, "Retired"
        REVOKED = engine.REVOKED, "Revoked"

    kid = models.CharField(
        max_length=64, unique=True, help_text="RFC 7638 SHA-256 thumbprint of the public key."
    )
    algorithm = models.CharField(
        max_length=8, choices=[(name, f"{name} ({what})") for name, what in SIGNING_ALGORITHMS.items()]
    )
    phase = models.CharField(max_length=16, choices=Phase.choices)
    public_jwk = models.JSONField(help_text="Public members only.")
    store = models.CharField(max_length=32, help_text="The key store that holds the private key.")
    store_reference = models.BinaryField(editable=False)
    # MAC (keys.integrity.KeyBinder) binding kid, algorithm, public key and store reference under
    # KEY_ENCRYPTION_KEY: a row written by anyone without the secret is never published. Empty on
    # rows made before bindings existed, until publishing proves them against the sealed key.
    binding = models.BinaryField(editable=False, default=b"", blank=True)
    created_at = models.DateTimeField()
    published_at = models.DateTimeField(help_text="First in the JWKS.")
    activated_at = models.DateTimeField(null=True, blank=True, help_text="Started signing.")
    deactivated_at = models.DateTimeField(null=True, blank=True, help_text="Stopped signing.")
    retired_at = models.DateTimeField(null=True, blank=True, help_text="Dropped from the JWKS.")
    revoked_at = models.DateTimeField(null=True, blank=True)
    # The sealed key stays out of the history: re-encryption must not leave old ciphertexts behind.
    history = HistoricalRecords(excluded_fields=["store_reference"])
    # Set before save(): simple_history writes it into the history row (annotation only, no default).
    _change_reason: str

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["phase"], condition=models.Q(phase=engine.ACTIVE), name="signing_key_one_active"
            ),
            models.UniqueConstraint(
                fields=["phase"], condition=models.Q(phase=engine.PENDING), name="signing_key_one_pending"
            ),
        ]
        permissions = [
            ("rotate_signingkey", "Can rotate signing keys"),
            ("revoke_signingkey", "Can revoke a signing key"),
        ]

    def __str__(self) -> str:
        return f"{self.kid} ({self.algorithm}, {self.phase})"


class KeyRotationLock(models.Model):
    """One row that rotation, revocation and publishing lock, so they run one at a time."""

    class Meta:
        default_permissions = ()

    def __str__(self) -> str:
        return "key rotation lock"


class JwksDocument(models.Model):
    """One published version of the JWKS, rendered once and served as stored."""

    version = models.PositiveIntegerField(unique=True)
    body = models.TextField()
    etag = models.CharField(max_length=64, help_text="Strong ETag, quotes included.")
    created_at = models.DateTimeField()
    # MAC over (version, etag, body) under KEY_ENCRYPTION_KEY: a document written by anyone else
    # is never served (keys.selectors serves the newest document that verifies).
    mac = models.BinaryField(editable=False, default=b"", blank=True)

    class Meta:
        ordering = ["-version"]
        default_permissions = ("view",)
        verbose_name = "JWKS version"
        verbose_name_plural = "JWKS versions"

    def __str__(self) -> str:
        return f"JWKS v{self.version}"
