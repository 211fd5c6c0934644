"""The last known good keys of each identity provider in the database, the store every worker shares.

``JwksCache`` writes each key source's keys here after every successful fetch and reads them back
only when a worker has no usable keys and the provider cannot be reached. A row is keyed by
(``authority``, ``tid``): an Entra directory's authority and its name, or another provider's
discovery URL and its name (see ``accounts.provider_keys.KeySource``). The store is a fallback, never a
requirement: a database error reading or writing it is logged and the exchange goes on as if nothing
were stored (each statement runs in its own savepoint, so a failure never spoils an open transaction).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from django.db import Error, connections, transaction

from accounts.models import ProviderKeySet
from accounts.provider_keys import StoredKeySet

logger = logging.getLogger(__name__)


class ProviderKeySetStore:
    """One ``ProviderKeySet`` row per key source, upserted on every fetch."""

    def get(self, *, authority: str, tid: str) -> StoredKeySet | None:
        try:
            with transaction.atomic():
                row = ProviderKeySet.objects.filter(authority=authority, tid=tid).first()
        except Error as exc:
            logger.warning("stored keys of %s not read (%s)", tid, type(exc).__name__)
            return None
        if row is None:
            return None
        return StoredKeySet(jwks=row.jwks, fetched_at=row.fetched_at.timestamp())

    def put(self, *, authority: str, tid: str, jwks: dict, fetched_at: float) -> None:
        row = ProviderKeySet(
            authority=authority, tid=tid, jwks=jwks, fetched_at=datetime.fromtimestamp(fetched_at, tz=UTC)
        )
        try:
            with transaction.atomic():
                ProviderKeySet.objects.bulk_create(
                    [row],
                    update_conflicts=True,
                    unique_fields=["authority", "tid"],
                    update_fields=["jwks", "fetched_at"],
                )
        except Error as exc:
            logger.warning("keys of %s not stored (%s)", tid, type(exc).__name__)

    def thread_finished(self) -> None:
        connections.close_all()  # this thread's connections only: Django keeps one set per thread
