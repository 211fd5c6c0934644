"""Writes on accounts: principals, the external identities we issue tokens for."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from accounts.models import Principal


def principal_get_or_create(*, tid: str, oid: str) -> Principal:
    """The principal of Entra identity (``tid``, ``oid``), created on its first exchange.

    Warm path: exactly one query. Race-safe: when two first exchanges insert at once, the unique
    constraint lets one win; the loser's insert fails inside its own savepoint and it reads the
    winner's row, so the caller's transaction stays usable and there is one principal.
    """
    try:
        return Principal.objects.get(tid=tid, oid=oid)
    except Principal.DoesNotExist:
        pass
    try:
        with transaction.atomic():
            return Principal.objects.create(tid=tid, oid=oid)
    except IntegrityError:
        return Principal.objects.get(tid=tid, oid=oid)
