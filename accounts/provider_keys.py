"""Entra's signing keys per directory: discovery, JWKS fetch, an in-process cache that degrades well,
and the last known good keys in a store that every worker shares.

These are the identity provider's keys, which verify the Entra tokens we are given; the keys we sign
our own tokens with, and our JWKS, are the ``keys`` app's.

Keys come from ``{authority}/{tid}/v2.0/.well-known/openid-configuration`` → ``jwks_uri``, which must
be on the authority's own origin (scheme, host and port). The cache lives for the life of the worker
process:

- It refreshes each directory's keys by age (``refresh_after``, an hour) in the background.
- An unknown ``kid`` refetches at most once per ``kid_refetch_cooldown`` (30 s) per directory, and a
  ``kid`` missing from a fresh fetch triggers no other fetch for ``absent_kid_ttl`` (5 minutes; at
  most ``max_absent_kids`` are remembered). Every fetch brings the whole JWKS, so forged ``kid``s can
  keep a genuine new key out for at most the cooldown, 30 s: the first unknown ``kid`` after it (the
  attacker's own included) fetches it. Nor can they make us hammer Entra: one fetch per 30 s per
  directory and worker at most.
- A failed refresh never empties it: the last known good keys stay in use while Entra is unreachable
  or answers errors or garbage, up to ``max_stale`` (``ENTRA_KEYS_MAX_STALE``, 24 hours by default,
  Microsoft's guidance for caching signing keys) after they were fetched.
- Every successful fetch also writes the keys, public members only, to the ``store``
  (``accounts.provider_key_store``: the database). A worker with no usable keys that cannot reach
  Entra (started or recycled during an outage) takes the stored ones if they are younger than
  ``max_stale``, after the same JWKS rules as fetched ones: the row is trusted no more than the
  network. With none, ``JwksUnavailable`` says when Entra will be tried again (``retry_after``):
  an outage, not the caller's fault.

Every fetch has a total deadline.

HTTP goes through the standard library's ``http.client`` rather than ``urllib`` or ``requests``: it
follows no redirects, and setting the socket timeout before each read enforces one deadline for the
whole refresh, which ``urllib``'s per-operation timeout cannot (a server dripping bytes would hold a
worker indefinitely). No new dependency.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import http.client
import json
import logging
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import SplitResult, urlsplit

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey, RSAPublicNumbers
from django.conf import settings

from accounts.claims import v2_issuer
from lib import metrics
from lib.env import is_loopback

logger = logging.getLogger(__name__)

MIN_RSA_BITS = 2048
DEFAULT_PORTS = {"https": 443, "http": 80}


class JwksUnavailable(Exception):
    """No usable keys could be had (Entra unreachable, slow, an error status or garbage; none stored).

    ``retry_after`` is the number of seconds until the cache tries Entra again, when it says.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class ProviderKey:
    """One RSA verification key from a directory's JWKS, with the JWK's own ``issuer`` if any."""

    kid: str
    public_key: RSAPublicKey
    issuer: str | None = None


@dataclass(frozen=True)
class StoredKeySet:
    """A directory's keys as a store returns them: a JWKS to parse again, and when it was fetched."""

    jwks: object
    fetched_at: float  # seconds since the epoch, like the cache's clock


class KeySetStore(Protocol):
    """Where workers share each directory's last known good keys (``accounts.provider_key_store``).

    A store handles its own failures (logs them; ``get`` then answers None): it is a fallback, never
    a reason to refuse an exchange.
    """

    def get(self, *, authority: str, tid: str) -> StoredKeySet | None: ...

    def put(self, *, authority: str, tid: str, jwks: dict, fetched_at: float) -> None: ...

    def thread_finished(self) -> None:
        """A background refresh thread ends: release what it held (its database connection)."""


@dataclass
class DirectoryKeys:
    """The cache entry of one directory; ``*_at`` are readings of the cache's ``clock``.

    ``absent`` maps the ``kid``s that a fresh fetch did not contain to when that fetch was made.
    """

    keys: dict[str, ProviderKey] = field(default_factory=dict)
    fetched_at: float | None = None
    attempted_at: float | None = None
    kid_refetch_at: float | None = None
    absent: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    refresher: threading.Thread | None = None


class JwksCache:
    """Signing keys per (authority, directory), fetched on demand, kept per worker process and shared
    through ``store`` (none: nothing is shared).

    Seams for tests are class attributes: ``clock`` for cache ages and throttles, and (also
    constructor arguments) ``timeout`` for the fetch deadline, ``refresh_in_background``;
    ``max_stale`` is ``ENTRA_KEYS_MAX_STALE`` (read once, here) unless given.
    """

    clock: Callable[[], float] = time.time
    timeout = 3.0  # seconds for one whole refresh (discovery + JWKS, connect + read)
    refresh_after = 3600  # Entra publishes new keys well before signing with them
    retry_after = 30  # after a failed fetch, wait this long before trying again
    kid_refetch_cooldown = 30  # an unknown kid refetches at most this often per directory
    absent_kid_ttl = 300  # a kid missing from a fresh fetch triggers no other fetch for this long
    max_absent_kids = 1000
    max_clock_skew = 300  # stored keys dated this far ahead (another host's clock) are still believed
    max_bytes = 256 * 1024
    max_keys = 100
    refresh_in_background = True

    def __init__(
        self,
        *,
        timeout: float | None = None,
        refresh_in_background: bool | None = None,
        store: KeySetStore | None = None,
        max_stale: float | None = None,
    ) -> None:
        if timeout is not None:
            self.timeout = timeout
        if refresh_in_background is not None:
            self.refresh_in_background = refresh_in_background
        self.store = store
        # How long after their fetch keys may still verify tokens while Entra cannot be reached.
        self.max_stale: float = settings.ENTRA_KEYS_MAX_STALE if max_stale is None else max_stale
        self._directories: dict[tuple[str, str], DirectoryKeys] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Forget every directory (tests; a running background refresh finishes harmlessly)."""
        with self._lock:
            self._directories = {}

    def directory(self, *, authority: str, tid: str) -> DirectoryKeys:
        key = (authority, tid)
        with self._lock:
            entry = self._directories.get(key)
            if entry is None:
                entry = self._directories[key] = DirectoryKeys()
            return entry

    def key_get(self, *, authority: str, tid: str, kid: str) -> ProviderKey | None:
        """The key ``kid`` of directory ``tid``, or None if the directory does not publish it.

        Raises ``JwksUnavailable`` when no usable keys are known (none in memory younger than
        ``max_stale``) and none can be fetched or taken from the store.
        """
        entry = self.directory(authority=authority, tid=tid)
        now = self.clock()
        if not self._usable(entry, now):
            self._load(entry, authority=authority, tid=tid, now=now)
        elif self._refresh_due(entry, now):
            self._refresh_later(entry, authority=authority, tid=tid, now=now)
        key = entry.keys.get(kid)
        if key is None and self._kid_refetch_allowed(entry, kid, now):
            with entry.lock:
                key = entry.keys.get(kid)
                if key is None and self._kid_refetch_allowed(entry, kid, now):
                    key = self._kid_refetch(entry, authority=authority, tid=tid, kid=kid, now=now)
        return key

    def _usable(self, entry: DirectoryKeys, now: float) -> bool:
        fetched = entry.fetched_at  # on every validation: kept to plain comparisons
        return (
            fetched is not None
            and bool(entry.keys)
            and -self.max_clock_skew <= now - fetched < self.max_stale
        )

    def _within_bound(self, age: float) -> bool:
        return -self.max_clock_skew <= age < self.max_stale

    def _load(self, entry: DirectoryKeys, *, authority: str, tid: str, now: float) -> None:
        """Usable keys for a directory with none in memory: from Entra, else from the store, else
        ``JwksUnavailable`` saying when Entra will be tried again."""
        with entry.lock:
            if self._usable(entry, now):
                return  # another thread loaded them while we waited
            cause = "the last fetch failed moments ago"
            if entry.attempted_at is None or now - entry.attempted_at >= self.retry_after:
                try:
                    self._refresh(entry, authority=authority, tid=tid, now=now)
                    return
                except JwksUnavailable as exc:
                    if self._stored_adopt(entry, authority=authority, tid=tid, now=now):
                        return
                    cause = str(exc)
            attempted = entry.attempted_at if entry.attempted_at is not None else now
            raise JwksUnavailable(cause, retry_after=max(0.0, attempted + self.retry_after - now))

    def _stored_adopt(self, entry: DirectoryKeys, *, authority: str, tid: str, now: float) -> bool:
        """Take the store's keys if younger than ``max_stale`` and valid by the rules of a fetched JWKS."""
        stored = self.store.get(authority=authority, tid=tid) if self.store is not None else None
        if stored is None:
            return False
        age = now - stored.fetched_at
        if not self._within_bound(age):
            logger.warning(
                "stored Entra keys of directory %s not used: fetched %d s ago, beyond the %d s allowed",
                tid,
                age,
                self.max_stale,
            )
            return False
        try:
            if not isinstance(stored.jwks, dict):
                raise JwksUnavailable("the stored JWKS is not an object")
            keys = _parse_jwks(stored.jwks, max_keys=self.max_keys)
        except JwksUnavailable as exc:
            logger.warning("stored Entra keys of directory %s not used (%s)", tid, exc)
            return False
        entry.keys, entry.fetched_at = keys, stored.fetched_at
        logger.warning(
            "Entra unreachable: directory %s verified with the keys stored %d s ago (%d keys)",
            tid,
            age,
            len(keys),
        )
        return True

    def _refresh_due(self, entry: DirectoryKeys, now: float) -> bool:
        fetched = entry.fetched_at if entry.fetched_at is not None else now
        attempted = entry.attempted_at if entry.attempted_at is not None else fetched
        return now - fetched >= self.refresh_after and now - attempted >= self.retry_after

    def _kid_refetch_allowed(self, entry: DirectoryKeys, kid: str, now: float) -> bool:
        """Once per cooldown per directory, not for a kid a fresh fetch lacked, not into a failing Entra."""
        if entry.kid_refetch_at is not None and now - entry.kid_refetch_at < self.kid_refetch_cooldown:
            return False
        absent_at = entry.absent.get(kid)
        if absent_at is not None and now - absent_at < self.absent_kid_ttl:
            return False
        attempted = entry.attempted_at
        if attempted is None or attempted == entry.fetched_at:
            return True  # the last fetch succeeded
        return now - attempted >= self.retry_after

    def _kid_refetch(
        self, entry: DirectoryKeys, *, authority: str, tid: str, kid: str, now: float
    ) -> ProviderKey | None:
        """Fetch the JWKS for an unknown kid; if the fresh keys lack it too, remember it as absent.
        Caller holds ``entry.lock``."""
        entry.kid_refetch_at = now
        try:
            self._refresh(entry, authority=authority, tid=tid, now=now)
        except JwksUnavailable:
            return None  # logged; the cached keys stay
        key = entry.keys.get(kid)
        if key is None:
            entry.absent.pop(kid, None)
            while len(entry.absent) >= self.max_absent_kids:
                del entry.absent[next(iter(entry.absent))]  # the oldest
            entry.absent[kid] = now
        return key

    def _refresh_later(self, entry: DirectoryKeys, *, authority: str, tid: str, now: float) -> None:
        """Refresh aged keys without making this request wait (unless background is turned off)."""
        if not self.refresh_in_background:
            with entry.lock, contextlib.suppress(JwksUnavailable):
                self._refresh(entry, authority=authority, tid=tid, now=now)
            return
        with self._lock:
            if entry.refresher is not None and entry.refresher.is_alive():
                return
            entry.attempted_at = now  # claim the refresh so other requests don't start one too

            def run() -> None:
                try:
                    with entry.lock, contextlib.suppress(JwksUnavailable):
                        self._refresh(entry, authority=authority, tid=tid, now=now)
                finally:
                    if self.store is not None:
                        self.store.thread_finished()

            entry.refresher = threading.Thread(target=run, name=f"jwks-refresh-{tid}", daemon=True)
            entry.refresher.start()

    def _refresh(self, entry: DirectoryKeys, *, authority: str, tid: str, now: float) -> None:
        """Fetch the directory's keys and replace the cached ones; on any failure keep them. Caller
        holds ``entry.lock``."""
        entry.attempted_at = now
        deadline = time.monotonic() + self.timeout
        discovery_url = f"{v2_issuer(authority, tid)}/.well-known/openid-configuration"
        try:
            discovery = self._get_json(discovery_url, deadline=deadline)
            jwks_uri = discovery.get("jwks_uri")
            if not isinstance(jwks_uri, str):
                raise JwksUnavailable("the discovery document has no jwks_uri")
            _check_jwks_uri(jwks_uri, authority=authority)
            keys = _parse_jwks(self._get_json(jwks_uri, deadline=deadline), max_keys=self.max_keys)
        except JwksUnavailable as exc:
            metrics.jwks_fetch_record(ok=False)
            logger.warning(
                "Entra keys of directory %s not refreshed (%s); %d cached keys stay in use",
                tid,
                exc,
                len(entry.keys),
            )
            raise
        entry.keys = keys
        entry.fetched_at = now
        metrics.jwks_fetch_record(ok=True)
        logger.info("Entra keys of directory %s refreshed: %d keys", tid, len(keys))
        if self.store is not None:
            self.store.put(authority=authority, tid=tid, jwks=jwks_document(keys), fetched_at=now)

    def _get_json(self, url: str, *, deadline: float) -> dict:
        """GET ``url`` and parse a JSON object, all before ``deadline`` (a ``time.monotonic`` value)."""
        parts = urlsplit(url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection: http.client.HTTPConnection | None = None
        try:
            # Inside the try: a deadline already spent (TimeoutError) or a bad port (ValueError)
            # is an unavailable JWKS like any other, never an error that escapes to the client.
            if parts.hostname is None:
                raise ValueError("the URL names no host")
            if parts.scheme == "https":
                connection = http.client.HTTPSConnection(
                    parts.hostname,
                    parts.port,
                    timeout=_remaining(deadline),
                    context=ssl.create_default_context(),
                )
            else:
                connection = http.client.HTTPConnection(
                    parts.hostname, parts.port, timeout=_remaining(deadline)
                )
            connection.request("GET", path, headers={"Accept": "application/json"})
            sock = connection.sock  # kept: getresponse() detaches it when the server closes after
            sock.settimeout(_remaining(deadline))
            response = connection.getresponse()
            if response.status != 200:
                raise JwksUnavailable(f"{parts.path} answered HTTP {response.status}")
            body = b""
            while len(body) <= self.max_bytes:
                sock.settimeout(_remaining(deadline))
                chunk = response.read1(64 * 1024)
                if not chunk:
                    break
                body += chunk
            if len(body) > self.max_bytes:
                raise JwksUnavailable(f"{parts.path} answered more than {self.max_bytes} bytes")
        except (OSError, ValueError, http.client.HTTPException) as exc:  # socket.timeout is an OSError
            raise JwksUnavailable(f"{parts.path} unreachable ({exc.__class__.__name__})") from None
        finally:
            if connection is not None:
                connection.close()
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):
            raise JwksUnavailable(f"{parts.path} answered something that is not JSON") from None
        if not isinstance(document, dict):
            raise JwksUnavailable(f"{parts.path} answered JSON that is not an object")
        return document


def _remaining(deadline: float) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("deadline passed")
    return remaining


def _check_jwks_uri(uri: str, *, authority: str) -> None:
    """On the authority's own origin (scheme, host and port): https, or plain http on a loopback
    authority (the fake Entra in tests).

    Entra publishes its keys on the authority's origin in every cloud; a discovery document pointing
    elsewhere, another port of the same host included, is refused rather than followed (B2C or other
    issuers will need their own rule).
    """
    parts = urlsplit(uri)
    try:
        origin = _origin(parts)
    except ValueError:
        raise JwksUnavailable("the jwks_uri is not a plain absolute URL") from None
    if parts.username or parts.password or not parts.hostname:
        raise JwksUnavailable("the jwks_uri is not a plain absolute URL")
    if origin != _origin(urlsplit(authority)):
        raise JwksUnavailable("the jwks_uri is not on the authority's origin (scheme, host and port)")
    if parts.scheme == "https" or (parts.scheme == "http" and is_loopback(parts.hostname)):
        return
    raise JwksUnavailable("the jwks_uri is not https (plain http only on the loopback authority)")


def _origin(parts: SplitResult) -> tuple[str, str | None, int | None]:
    """(scheme, host, port) with the scheme's default port filled in; ValueError on a malformed port."""
    return parts.scheme, parts.hostname, parts.port or DEFAULT_PORTS.get(parts.scheme)


def jwks_document(keys: Mapping[str, ProviderKey]) -> dict:
    """The keys as a JWKS of their public members only, which ``_parse_jwks`` reads back."""
    return {"keys": [_public_jwk(key) for key in keys.values()]}


def _public_jwk(key: ProviderKey) -> dict[str, str]:
    numbers = key.public_key.public_numbers()
    jwk = {"kty": "RSA", "use": "sig", "kid": key.kid, "n": _b64_uint(numbers.n), "e": _b64_uint(numbers.e)}
    if key.issuer is not None:
        jwk["issuer"] = key.issuer
    return jwk


def _b64_uint(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64_int(value: object) -> int:
    if not isinstance(value, str) or not value:
        raise ValueError("not a base64url string")
    return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")


def _parse_jwks(document: dict, *, max_keys: int) -> dict[str, ProviderKey]:
    """The usable RS256 signing keys of a JWKS; unusable entries are skipped, none usable fails."""
    entries = document.get("keys")
    if not isinstance(entries, list):
        raise JwksUnavailable("the JWKS has no keys list")
    keys: dict[str, ProviderKey] = {}
    for jwk in entries[:max_keys]:
        key = _parse_jwk(jwk)
        if key is not None and key.kid not in keys:
            keys[key.kid] = key
    if not keys:
        raise JwksUnavailable("the JWKS holds no usable RS256 signing key")
    return keys


def _parse_jwk(jwk: object) -> ProviderKey | None:
    # The key type is bound to the algorithm: only RSA keys meant for signatures with RS256 (or no alg).
    if not isinstance(jwk, dict) or jwk.get("kty") != "RSA":
        return None
    if jwk.get("use", "sig") != "sig" or jwk.get("alg", "RS256") != "RS256":
        return None
    kid, issuer = jwk.get("kid"), jwk.get("issuer")
    if not isinstance(kid, str) or not kid or (issuer is not None and not isinstance(issuer, str)):
        return None
    try:
        public_key = RSAPublicNumbers(_b64_int(jwk.get("e")), _b64_int(jwk.get("n"))).public_key()
    except (ValueError, binascii.Error):
        return None
    if public_key.key_size < MIN_RSA_BITS:
        return None
    return ProviderKey(kid=kid, public_key=public_key, issuer=issuer)
