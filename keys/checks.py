"""Start-up checks: the key store is usable and KEY_ENCRYPTION_KEY opens every published key.

``signing_keys_verify`` runs in config/wsgi.py, in every Celery worker at start (the ``worker_init``
receiver below, connected in ``KeysConfig.ready``) and in ``rotate_keys``; the same test is a
Django system check (``manage.py check --database default``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.core.checks import CheckMessage, Error, register
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connection

from keys import engine
from keys.errors import KeyDecryptionFailed
from keys.models import SigningKey
from keys.stores import key_store_get

logger = logging.getLogger(__name__)


def signing_keys_verify() -> None:
    """Raise ImproperlyConfigured naming the setting when a published key cannot be opened.

    A database that is down or not migrated yet is not this check's concern (``/readyz`` reports
    it); it logs and lets start-up continue.
    """
    store = key_store_get()
    try:
        rows = list(
            SigningKey.objects.filter(phase__in=engine.PUBLISHED_PHASES, store=store.name).values_list(
                "kid", "algorithm", "store_reference"
            )
        )
    except DatabaseError as exc:
        logger.warning("signing keys not checked at start-up: database unavailable (%s)", type(exc).__name__)
        return
    for kid, algorithm, reference in rows:
        try:
            store.signer(kid=kid, algorithm=algorithm, reference=bytes(reference))
        except KeyDecryptionFailed as exc:
            raise ImproperlyConfigured(str(exc)) from None


def worker_start_verify(**kwargs: Any) -> None:
    """Celery ``worker_init`` receiver: stop the worker at start when the keys cannot be opened.

    Celery logs and swallows ordinary exceptions raised by signal receivers, so this exits instead.
    """
    try:
        signing_keys_verify()
    except ImproperlyConfigured as exc:
        logger.critical("refusing to start the worker: %s", exc)
        raise SystemExit(f"ImproperlyConfigured: {exc}") from None


@register("keys")
def signing_keys_check(
    app_configs: Iterable[Any] | None = None, databases: Iterable[str] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """The system-check form of ``signing_keys_verify`` (the database part only when allowed)."""
    try:
        key_store_get()
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="keys.E001")]
    if not databases or "default" not in databases:
        return []
    if SigningKey._meta.db_table not in connection.introspection.table_names():
        return []  # not migrated yet: the first `migrate` runs the checks before creating tables
    try:
        signing_keys_verify()
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="keys.E002", hint="Set KEY_ENCRYPTION_KEY to the secret the keys use.")]
    return []
