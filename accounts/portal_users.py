"""Portal admins who sign in with Entra: found by (tid, oid), their rights set at every sign-in."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.module_loading import import_string

from accounts.models import User

NAME_MAX = 150


@dataclass(frozen=True)
class PortalIdentity:
    """Who signed in, from a verified ID token: directory, object id, display name and app roles."""

    tid: str
    oid: str
    name: str
    roles: frozenset[str]

    @classmethod
    def from_claims(cls, claims: Mapping[str, object]) -> PortalIdentity:
        roles = claims.get("roles")
        name = claims.get("name")
        return cls(
            tid=str(claims["tid"]).lower(),
            oid=str(claims["oid"]).lower(),
            name=name[:NAME_MAX] if isinstance(name, str) else "",
            roles=frozenset(role for role in roles if isinstance(role, str))
            if isinstance(roles, list)
            else frozenset(),
        )


def portal_user_get(*, identity: PortalIdentity) -> User | None:
    """The portal user with this Entra identity, if any (never matched by email or name)."""
    return User.objects.filter(entra_tid=identity.tid, entra_oid=identity.oid).first()


def portal_user_create(*, identity: PortalIdentity) -> User:
    """A new portal user for an Entra identity: no password, no rights until ``portal_user_rights_update``."""
    user = User(
        username=f"{identity.oid}@{identity.tid}",
        entra_tid=identity.tid,
        entra_oid=identity.oid,
        first_name=identity.name,
    )
    user.set_unusable_password()
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError:
        # A concurrent first sign-in of the same person created the row first.
        existing = portal_user_get(identity=identity)
        if existing is None:
            raise
        return existing
    return user


def portal_user_rights_update(*, user: User, identity: PortalIdentity) -> User:
    """Platform admin iff the token holds PORTAL_ADMIN_ROLE; staff iff that or the staff check says so.

    Evaluated at every sign-in, so removing the role in Entra (or the tenant-admin assignment)
    removes the rights at the next sign-in.
    """
    is_platform_admin = settings.PORTAL_ADMIN_ROLE in identity.roles
    user.is_superuser = is_platform_admin
    user.is_staff = is_platform_admin or staff_check()(user=user)
    user.first_name = identity.name or user.first_name
    user.save(update_fields=["is_superuser", "is_staff", "first_name"])
    return user


def staff_check() -> Callable[..., bool]:
    """The PORTAL_STAFF_CHECK function (authz's "administers a tenant"), or one that says no."""
    path = getattr(settings, "PORTAL_STAFF_CHECK", None)
    if not path:
        return _nobody
    return import_string(path)


def _nobody(*, user: User) -> bool:
    return False
