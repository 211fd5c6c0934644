"""Azure Key Vault: signing keys that never leave the vault (``KEY_STORE=azure-keyvault``).

Every key is created inside the vault (EC P-256 for ES256, RSA 3072 for RS256/PS256), with only the
``sign`` operation and not exportable; the database keeps its public JWK and versioned key id. Every
token is signed by the vault (a SHA-256 digest goes in) and the signature is checked locally against
the vault's own public key before the token leaves. Retiring or revoking a key disables its version.

Faults never become a 500 nor a token signed by anything else: every vault call runs under a hard
deadline, at most ``MAX_CONCURRENT`` at once per process, and a short circuit breaker stops calling
a failing vault for a while; all of them raise ``KeyStoreUnavailable`` (the exchange answers 503
``temporarily_unavailable`` with Retry-After). Credentials come from azure-identity's
DefaultAzureCredential: managed identity, workload identity or a service principal, no secret of ours.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar
from urllib.parse import urlsplit

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestTimeoutError,
    ServiceResponseTimeoutError,
)
from azure.identity import DefaultAzureCredential
from azure.keyvault.keys import KeyClient, KeyCurveName, KeyOperation, KeyVaultKey, KeyVaultKeyIdentifier
from azure.keyvault.keys.crypto import CryptographyClient, KeyWrapAlgorithm, SignatureAlgorithm
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from keys.errors import KeyIntegrityFailed, KeyStoreUnavailable
from keys.stores import RSA_KEY_SIZE, KeyStore, KeyWrapper, NewKey, Signer, b64url, jwk_thumbprint

logger = logging.getLogger(__name__)
T = TypeVar("T")

# Bounds of one vault call, as seen by an exchange: connect and read timeouts inside the SDK, and a
# hard deadline around the whole call (token fetch and challenge included).
CALL_DEADLINE_SECONDS = 2.5
CONNECTION_TIMEOUT_SECONDS = 1
READ_TIMEOUT_SECONDS = 2
MAX_CONCURRENT = 8
# The breaker opens after this many failures in a row and stays open this long (or the vault's
# Retry-After, up to BREAKER_MAX_SECONDS).
BREAKER_FAILURES = 3
BREAKER_OPEN_SECONDS = 10.0
BREAKER_MAX_SECONDS = 60.0


class VaultGuard:
    """Deadline, concurrency cap and circuit breaker around vault calls, per process."""

    clock: Callable[[], float] = time.monotonic

    def __init__(
        self,
        *,
        deadline: float = CALL_DEADLINE_SECONDS,
        max_concurrent: int = MAX_CONCURRENT,
        failures: int = BREAKER_FAILURES,
        open_seconds: float = BREAKER_OPEN_SECONDS,
    ) -> None:
        self.deadline = deadline
        self.failures = failures
        self.open_seconds = open_seconds
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self._pool = ThreadPoolExecutor(max_workers=max_concurrent, thread_name_prefix="key-vault")
        self._lock = threading.Lock()
        self._failed = 0
        self._open_until = 0.0

    def call(self, what: str, function: Callable[[], T]) -> T:
        now = self.clock()
        if now < self._open_until:
            raise KeyStoreUnavailable(
                f"Key Vault: not called for {self._open_until - now:.0f} s after repeated failures",
                retry_after=max(1, round(self._open_until - now)),
            )
        if not self._slots.acquire(blocking=False):
            raise KeyStoreUnavailable(f"Key Vault: {MAX_CONCURRENT} calls already in flight", retry_after=1)
        try:
            future = self._pool.submit(function)
            try:
                result = future.result(timeout=self.deadline)
            except FutureTimeout:
                raise self._failure(
                    what, f"no answer in time ({self.deadline:.1f} s)", retry_after=None
                ) from None
            except (ServiceRequestTimeoutError, ServiceResponseTimeoutError):
                raise self._failure(what, "no answer in time", retry_after=None) from None
            except ClientAuthenticationError as exc:
                raise self._failure(what, _described(exc, "the credential was refused"), None) from None
            except HttpResponseError as exc:
                raise self._failure(what, _described(exc, "refused"), _retry_after(exc)) from None
            except AzureError as exc:
                raise self._failure(what, f"unreachable ({type(exc).__name__})", None) from None
        finally:
            self._slots.release()
        with self._lock:
            self._failed = 0
        return result

    def _failure(self, what: str, reason: str, retry_after: int | None) -> KeyStoreUnavailable:
        with self._lock:
            self._failed += 1
            if self._failed >= self.failures or retry_after:
                pause = min(
                    BREAKER_MAX_SECONDS,
                    max(self.open_seconds if self._failed >= self.failures else 0, retry_after or 0),
                )
                self._open_until = max(self._open_until, self.clock() + pause)
        message = f"Key Vault {what}: {reason}"
        logger.error("%s", message)
        return KeyStoreUnavailable(message, retry_after=retry_after or 1)

    def is_open(self) -> bool:
        return self.clock() < self._open_until

    def reset(self) -> None:
        with self._lock:
            self._failed = 0
            self._open_until = 0.0


def _described(exc: AzureError, default: str) -> str:
    """Status and the vault's error codes, never a token or a header. The inner code tells a 403
    from the vault's firewall (ForbiddenByFirewall: the public path was taken) from a missing role
    (ForbiddenByRbac)."""
    status = getattr(exc, "status_code", None)
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None)
    inner = getattr(error, "innererror", None)
    inner_code = inner.get("code") if isinstance(inner, dict) else None
    parts = [str(part)[:64] for part in (status, code, inner_code) if part]
    return f"{default} ({' '.join(parts)})" if parts else default


def _retry_after(exc: HttpResponseError) -> int | None:
    response: Any = exc.response
    value = response.headers.get("Retry-After") if response is not None else None
    if value and value.isdigit():
        return max(1, int(value))
    return None


guard = VaultGuard()


def _public_jwk(key: KeyVaultKey) -> dict[str, str]:
    """The public members of a vault key, refusing anything but EC P-256 and RSA."""
    jwk: Any = key.key  # JsonWebKey sets its members dynamically
    kty = str(getattr(jwk.kty, "value", jwk.kty))
    if kty in ("EC", "EC-HSM") and str(getattr(jwk.crv, "value", jwk.crv)) == "P-256" and jwk.x and jwk.y:
        if len(jwk.x) != 32 or len(jwk.y) != 32:
            raise ValueError("malformed EC key")
        return {"kty": "EC", "crv": "P-256", "x": b64url(jwk.x), "y": b64url(jwk.y)}
    if kty in ("RSA", "RSA-HSM") and jwk.n and jwk.e:
        return {"kty": "RSA", "n": b64url(jwk.n.lstrip(b"\x00")), "e": b64url(jwk.e.lstrip(b"\x00"))}
    raise ValueError(f"unexpected key type {kty}")


def _public_key(jwk: dict[str, str]) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
    def number(member: str) -> int:
        return int.from_bytes(_b64decode(jwk[member]), "big")

    if jwk["kty"] == "EC":
        return ec.EllipticCurvePublicNumbers(number("x"), number("y"), ec.SECP256R1()).public_key()
    return rsa.RSAPublicNumbers(number("e"), number("n")).public_key()


def _b64decode(text: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class _VaultSigner(Signer):
    """Signs in the vault; checks every signature against the vault key's public key first."""

    def __init__(self, *, kid: str, algorithm: str, client: CryptographyClient, jwk: dict[str, str]) -> None:
        self.kid = kid
        self.algorithm = algorithm
        self._client = client
        self._public_key = _public_key(jwk)

    def sign(self, data: bytes) -> bytes:
        digest = hashlib.sha256(data).digest()
        algorithm = SignatureAlgorithm(self.algorithm)
        result = guard.call("sign", lambda: self._client.sign(algorithm, digest))
        signature = bytes(result.signature or b"")
        try:
            self._verify(digest, signature)
        except (InvalidSignature, ValueError):
            logger.error("Key Vault sign: the signature for %s does not verify; no token is issued", self.kid)
            raise KeyStoreUnavailable(
                "Key Vault sign: the signature does not verify", retry_after=1
            ) from None
        return signature

    def _verify(self, digest: bytes, signature: bytes) -> None:
        prehashed = Prehashed(hashes.SHA256())
        key = self._public_key
        if isinstance(key, ec.EllipticCurvePublicKey):
            if len(signature) != 64:
                raise ValueError("an ES256 signature is 64 bytes")
            der = encode_dss_signature(
                int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            )
            key.verify(der, digest, ec.ECDSA(prehashed))
        elif self.algorithm == "RS256":
            key.verify(signature, digest, padding.PKCS1v15(), prehashed)
        else:
            pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=hashes.SHA256.digest_size)
            key.verify(signature, digest, pss, prehashed)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.algorithm} {self.kid}>"


class AzureKeyVaultStore(KeyStore):
    """Keys created and used inside Azure Key Vault; the reference is the versioned key id."""

    name = "azure-keyvault"

    def __init__(self) -> None:
        if not settings.KEY_VAULT_URL:
            raise ImproperlyConfigured("KEY_VAULT_URL: required by KEY_STORE=azure-keyvault")
        self.vault_url = settings.KEY_VAULT_URL.rstrip("/")
        self.key_name = settings.KEY_VAULT_KEY_NAME
        self._options = _client_options()
        self._credential = _credential()
        self._keys = KeyClient(self.vault_url, self._credential, **self._options)

    def create(self, *, algorithm: str) -> NewKey:
        if algorithm == "ES256":
            key = guard.call(
                "create key",
                lambda: self._keys.create_ec_key(
                    self.key_name, curve=KeyCurveName.p_256, key_operations=[KeyOperation.sign]
                ),
            )
        elif algorithm in ("RS256", "PS256"):
            key = guard.call(
                "create key",
                lambda: self._keys.create_rsa_key(
                    self.key_name, size=RSA_KEY_SIZE, key_operations=[KeyOperation.sign]
                ),
            )
        else:
            raise ValueError(f"unsupported algorithm {algorithm!r}")
        jwk = self._checked_jwk(key, algorithm=algorithm)
        return NewKey(
            kid=jwk_thumbprint(jwk), algorithm=algorithm, public_jwk=jwk, reference=key.id.encode("utf-8")
        )

    def signer(self, *, kid: str, algorithm: str, reference: bytes) -> Signer:
        key = self._get(kid, reference)
        jwk = self._checked_jwk(key, algorithm=algorithm)
        if jwk_thumbprint(jwk) != kid:
            raise KeyIntegrityFailed(kid, "the vault key is not the key this kid names")
        client = CryptographyClient(key, self._credential, **self._options)
        return _VaultSigner(kid=kid, algorithm=algorithm, client=client, jwk=jwk)

    def public_jwk_of(self, *, kid: str, reference: bytes) -> dict[str, str]:
        key = self._get(kid, reference)
        try:
            return _public_jwk(key)
        except ValueError as exc:
            raise KeyIntegrityFailed(kid, f"the vault answered {exc}") from None

    def disable(self, reference: bytes) -> None:
        identifier = self._identifier("", reference)
        guard.call(
            "disable key",
            lambda: self._keys.update_key_properties(identifier.name, identifier.version, enabled=False),
        )

    def _get(self, kid: str, reference: bytes) -> KeyVaultKey:
        identifier = self._identifier(kid, reference)
        return guard.call("get key", lambda: self._keys.get_key(identifier.name, identifier.version))

    def _identifier(self, kid: str, reference: bytes) -> KeyVaultKeyIdentifier:
        try:
            identifier = KeyVaultKeyIdentifier(bytes(reference).decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise KeyIntegrityFailed(kid, "the reference is not a Key Vault key id") from None
        if identifier.vault_url.rstrip("/") != self.vault_url or not identifier.version:
            raise KeyIntegrityFailed(kid, "the reference names another vault or no key version")
        return identifier

    def _checked_jwk(self, key: KeyVaultKey, *, algorithm: str) -> dict[str, str]:
        try:
            jwk = _public_jwk(key)
        except ValueError as exc:
            logger.error("Key Vault answered a key that is refused: %s", exc)
            raise KeyStoreUnavailable(f"Key Vault: a key that is refused ({exc})", retry_after=1) from None
        if (jwk["kty"] == "EC") != (algorithm == "ES256"):
            raise KeyStoreUnavailable(f"Key Vault: a {jwk['kty']} key cannot sign {algorithm}", retry_after=1)
        if key.properties.enabled is False:
            raise KeyStoreUnavailable("Key Vault: the key version is disabled", retry_after=1)
        return jwk


_credentials: dict[str, Any] = {}


def _credential() -> Any:
    """One DefaultAzureCredential per process (it caches its tokens)."""
    if "default" not in _credentials:
        _credentials["default"] = DefaultAzureCredential()
    return _credentials["default"]


class VaultKeyWrapper(KeyWrapper):
    """Data keys wrapped under the vault RSA key KEY_VAULT_WRAP_KEY with RSA-OAEP-256.

    Wrapping uses the vault key's current version (only the public key is needed, so the SDK wraps
    locally once it has fetched the key); unwrapping is the vault's, named by the version that wrapped.
    """

    def __init__(self) -> None:
        if not settings.KEY_VAULT_URL:
            raise ImproperlyConfigured("KEY_VAULT_URL: required by KEY_VAULT_WRAP_KEY")
        self.vault_url = settings.KEY_VAULT_URL.rstrip("/")
        if not settings.KEY_VAULT_WRAP_KEY:
            raise ImproperlyConfigured("KEY_VAULT_WRAP_KEY: the name of the vault's RSA wrapping key")
        self.key_name: str = settings.KEY_VAULT_WRAP_KEY
        self._options = _client_options()
        self._credential = _credential()
        self._keys = KeyClient(self.vault_url, self._credential, **self._options)
        self._clients: dict[str, CryptographyClient] = {}

    def wrap(self, data_key: bytes) -> tuple[str, bytes]:
        key = guard.call("get wrapping key", lambda: self._keys.get_key(self.key_name))
        client = CryptographyClient(key, self._credential, **self._options)
        result = guard.call("wrap key", lambda: client.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, data_key))
        return str(key.id), bytes(result.encrypted_key)

    def unwrap(self, key_id: str, wrapped: bytes) -> bytes:
        try:
            identifier = KeyVaultKeyIdentifier(key_id)
        except ValueError:
            raise KeyStoreUnavailable(
                "Key Vault unwrap: the wrapping key id is malformed", retry_after=1
            ) from None
        if identifier.vault_url.rstrip("/") != self.vault_url or identifier.name != self.key_name:
            raise KeyStoreUnavailable("Key Vault unwrap: wrapped under another vault key", retry_after=1)
        client = self._clients.get(key_id)
        if client is None:
            client = self._clients[key_id] = CryptographyClient(key_id, self._credential, **self._options)
        result = guard.call("unwrap key", lambda: client.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, wrapped))
        data_key = bytes(result.key)
        if len(data_key) != 32:
            logger.error("Key Vault unwrap answered a data key of the wrong length; refused")
            raise KeyStoreUnavailable("Key Vault unwrap: a malformed answer", retry_after=1)
        return data_key


_wrappers: dict[str, VaultKeyWrapper] = {}


def vault_key_wrapper() -> VaultKeyWrapper:
    """One wrapper per process and vault key (its clients keep their connections and tokens)."""
    cache_key = f"{settings.KEY_VAULT_URL}|{settings.KEY_VAULT_WRAP_KEY}"
    if cache_key not in _wrappers:
        _wrappers[cache_key] = VaultKeyWrapper()
    return _wrappers[cache_key]


def _client_options() -> dict[str, Any]:
    return {
        "verify_challenge_resource": settings.KEY_VAULT_VERIFY_CHALLENGE_RESOURCE,
        "connection_timeout": CONNECTION_TIMEOUT_SECONDS,
        "read_timeout": READ_TIMEOUT_SECONDS,
        "retry_total": 0,  # a throttled or failing call answers 503 with Retry-After at once
    }


def private_endpoint_problem(vault_url: str) -> str | None:
    """None when the vault's host resolves only to private addresses (its private endpoint's);
    otherwise what is wrong, for KEY_VAULT_REQUIRE_PRIVATE_ENDPOINT."""
    host = urlsplit(vault_url).hostname or ""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, 443, proto=socket.IPPROTO_TCP)}
    except OSError as exc:
        return f"KEY_VAULT_REQUIRE_PRIVATE_ENDPOINT: {host} does not resolve ({type(exc).__name__})"
    public = sorted(address for address in addresses if not ipaddress.ip_address(address).is_private)
    if public:
        return (
            f"KEY_VAULT_REQUIRE_PRIVATE_ENDPOINT: {host} resolves to the public address {public[0]}, so "
            "traffic to the vault would take the public path; link the private DNS zone "
            "privatelink.vaultcore.azure.net to this VNet (see docs/deploy-azure.md)"
        )
    return None


def vault_readiness() -> str:
    """ "ok", or why the vault cannot be used now (for /readyz and the start-up checks)."""
    if not settings.KEY_VAULT_URL:
        return "ok"
    if settings.KEY_VAULT_REQUIRE_PRIVATE_ENDPOINT:
        problem = private_endpoint_problem(settings.KEY_VAULT_URL)
        if problem:
            return problem
    if guard.is_open():
        return "Key Vault: not called for a while after repeated failures"
    return "ok"
