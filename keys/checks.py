"""Start-up checks: the key store is usable and KEY_ENCRYPTION_KEY opens the published keys.

A wrong secret stops start-up. One corrupt or rogue row does not: it is named in the log (it is
never published and never signs), and the process starts so that the portal can revoke it.

``signing_keys_verify`` runs in config/wsgi.py, in every Celery worker at start (the ``worker_init``
receiver below, connected in ``KeysConfig.ready``) and in ``rotate_keys``; the same test is a
Django system check (``manage.py check --database default``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connection

from keys import engine
from keys.errors import KeyDecryptionFailed, KeyIntegrityFailed, KeyStoreUnavailable
from keys.models import SigningKey
from keys.stores import key_store_get

logger = logging.getLogger(__name__)


def signing_keys_verify() -> None:
    """Raise ImproperlyConfigured naming the setting when the configured secret cannot open the
    active key, or opens none of the published keys. A row that fails its integrity check (corrupt,
    or written by someone without the secret) is logged with how to revoke it, and start-up goes on:
    revoking needs no private material, and the portal must stay up to do it.

    A database that is down or not migrated yet is not this check's concern (``/readyz`` reports
    it); it logs and lets start-up continue.
    """
    from keys.services import signing_key_check  # services import this module's app at start

    store = key_store_get()
    try:
        keys = list(SigningKey.objects.filter(phase__in=engine.PUBLISHED_PHASES, store=store.name))
    except DatabaseError as exc:
        logger.warning("signing keys not checked at start-up: database unavailable (%s)", type(exc).__name__)
        return
    opened = 0
    wrong_secret: tuple[SigningKey, KeyDecryptionFailed] | None = None
    for key in keys:
        try:
            signing_key_check(key)
            store.signer(kid=key.kid, algorithm=key.algorithm, reference=bytes(key.store_reference))
        except KeyIntegrityFailed as exc:
            logger.error("%s", exc)
        except KeyStoreUnavailable as exc:
            # The vault's URL, credential, permission or key: said clearly, and /readyz reports it.
            logger.error("signing keys not checked at start-up: %s", exc)
            return
        except KeyDecryptionFailed as exc:
            if key.phase == engine.ACTIVE:
                raise ImproperlyConfigured(str(exc)) from None
            logger.error("%s", exc)
            wrong_secret = wrong_secret or (key, exc)
        else:
            opened += 1
    if wrong_secret is not None and not opened:
        raise ImproperlyConfigured(str(wrong_secret[1]))


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
    if settings.KEY_VAULT_URL and settings.KEY_VAULT_REQUIRE_PRIVATE_ENDPOINT:
        from keys.vault import private_endpoint_problem

        problem = private_endpoint_problem(settings.KEY_VAULT_URL)
        if problem:
            return [Error(problem, id="keys.E003")]
    if not databases or "default" not in databases:
        return []
    if SigningKey._meta.db_table not in connection.introspection.table_names():
        return []  # not migrated yet: the first `migrate` runs the checks before creating tables
    try:
        signing_keys_verify()
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="keys.E002", hint="Set KEY_ENCRYPTION_KEY to the secret the keys use.")]
    return []
