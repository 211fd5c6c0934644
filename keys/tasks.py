"""Celery tasks of the keys app: thin clients of the rotation and publication services."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import InterfaceError, OperationalError

from keys.schedules import PUBLISH_TASK, ROTATE_TASK
from keys.services import jwks_publish, signing_key_rotate

logger = logging.getLogger(__name__)

# A database that blips (failover, restart) is retried with backoff; anything else is a bug to see.
_TRANSIENT = (OperationalError, InterfaceError)
_RETRY = {"autoretry_for": _TRANSIENT, "retry_backoff": 5, "retry_backoff_max": 60, "max_retries": 5}


@shared_task(name=ROTATE_TASK, **_RETRY)
def rotate() -> None:
    """Apply the rotation policy now; safe to run concurrently (the service takes a row lock)."""
    result = signing_key_rotate()
    logger.info("key rotation: %s", result)


@shared_task(name=PUBLISH_TASK, **_RETRY)
def publish_jwks() -> None:
    """Re-render the JWKS document; the service stores a new version only if it changed."""
    document = jwks_publish()
    logger.info("JWKS current version: %s", document.version)
