"""A local development directory: Entra-shaped tokens to try the service without an Entra tenant.

Trusted by the validator only while ``DEBUG`` is on AND ``ENTRA_DEV_DIRECTORY`` is true (settings
refuse the latter when ``DEBUG=false``). Its RSA key is generated once under ``VAR_DIR`` and never
leaves the machine; its directory id is the fixed GUID ``DEV_TENANT_ID``.
"""

from __future__ import annotations

import os
import tempfile
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings

from accounts.claims import ClaimRules
from accounts.provider_keys import ProviderKey
from keys.stores import jwk_thumbprint, public_jwk

DEV_TENANT_ID = "dede0000-0000-4000-8000-000000000001"
DEV_CLIENT_ID = "dede0000-0000-4000-8000-000000000002"
DEV_TOKEN_LIFETIME = 3600

_keys: dict[Path, tuple[rsa.RSAPrivateKey, str]] = {}
_keys_lock = threading.Lock()


class DevDirectoryDisabled(Exception):
    """The development directory is off: it needs DEBUG=true and ENTRA_DEV_DIRECTORY=true."""


@dataclass(frozen=True)
class DevTokenRequest:
    """What the caller of ``dev_token_create`` asks for; empty scopes/roles take the configured ones."""

    oid: str
    groups: tuple[str, ...] = ()
    app_only: bool = False
    roles: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()


def dev_directory_enabled() -> bool:
    return bool(settings.DEBUG and settings.ENTRA_DEV_DIRECTORY)


def dev_key_path() -> Path:
    return Path(settings.VAR_DIR) / "entra-dev-directory" / "signing-key.pem"


def thumbprint(public_key: rsa.RSAPublicKey) -> str:
    """RFC 7638 JWK thumbprint, used as the ``kid`` (the same function names our own keys)."""
    return jwk_thumbprint(public_jwk(public_key))


def _key_load(path: Path, *, create: bool) -> tuple[rsa.RSAPrivateKey, str] | None:
    with _keys_lock:
        if path in _keys:
            return _keys[path]
        if not path.exists():
            if not create:
                return None
            _key_write(path)
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{path} does not hold an RSA private key")
        _keys[path] = (key, thumbprint(key.public_key()))
        return _keys[path]


def _key_write(path: Path) -> None:
    """Write a new key atomically; if another process won the race, its key is kept."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    descriptor, temporary = tempfile.mkstemp(dir=path.parent)
    try:
        os.fchmod(descriptor, 0o600)
        os.write(descriptor, pem)
        os.close(descriptor)
        os.link(temporary, path)
    except FileExistsError:
        pass
    finally:
        os.unlink(temporary)


def dev_signing_key_get(*, kid: str) -> ProviderKey | None:
    """The development directory's verification key if it exists and is ``kid``."""
    if not dev_directory_enabled():
        return None
    loaded = _key_load(dev_key_path(), create=False)
    if loaded is None or loaded[1] != kid:
        return None
    return ProviderKey(kid=kid, public_key=loaded[0].public_key())


def dev_token_create(*, request: DevTokenRequest, now: float) -> str:
    """Mint an Entra-shaped v2 access token from the development directory."""
    if not dev_directory_enabled():
        raise DevDirectoryDisabled("the development directory needs DEBUG=true and ENTRA_DEV_DIRECTORY=true")
    audiences = list(settings.ENTRA_AUDIENCE)
    if not audiences:
        raise DevDirectoryDisabled("set ENTRA_AUDIENCE (e.g. api://token-issuer) for the token's audience")
    rules = ClaimRules(
        authority=settings.ENTRA_AUTHORITY,
        tenant_ids=frozenset({DEV_TENANT_ID}),
        audiences=frozenset(audiences),
        required_scopes=frozenset(settings.ENTRA_REQUIRED_SCOPES),
        required_roles=frozenset(settings.ENTRA_REQUIRED_ROLES),
    )
    claims: dict[str, object] = {
        "aud": audiences[0],
        "iss": rules.v2_issuer(DEV_TENANT_ID),
        "iat": int(now),
        "nbf": int(now),
        "exp": int(now) + DEV_TOKEN_LIFETIME,
        "tid": DEV_TENANT_ID,
        "oid": request.oid,
        "sub": request.oid,
        "azp": DEV_CLIENT_ID,
        "ver": "2.0",
        "uti": uuid.uuid4().hex,
    }
    if request.groups:
        claims["groups"] = list(request.groups)
    if request.app_only:
        roles = list(request.roles) or list(settings.ENTRA_REQUIRED_ROLES[:1])
        if not roles:
            raise DevDirectoryDisabled("an app-only token needs --role or ENTRA_REQUIRED_ROLES")
        claims.update(idtyp="app", roles=roles)
    else:
        scopes = list(dict.fromkeys([*settings.ENTRA_REQUIRED_SCOPES, *request.scopes]))
        if not scopes:
            raise DevDirectoryDisabled("a delegated token needs ENTRA_REQUIRED_SCOPES (or --scope)")
        claims["scp"] = " ".join(scopes)
        if request.roles:
            claims["roles"] = list(request.roles)
    key, kid = _key_load(dev_key_path(), create=True)  # type: ignore[misc]  # create=True never yields None
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid, "typ": "JWT"})
