"""Entra's signing keys per directory: discovery, JWKS fetch and an in-process cache that degrades well.

These are the identity provider's keys, which verify the Entra tokens we are given; the keys we sign
our own tokens with, and our JWKS, are the ``keys`` app's.

Keys come from ``{authority}/{tid}/v2.0/.well-known/openid-configuration`` → ``jwks_uri``. The cache
lives for the life of the worker process. It refreshes by age in the background, refetches on an
unknown ``kid`` at most once per ``kid_refetch_interval`` per directory (a flood of forged ``kid``s
cannot make us hammer Entra), and a failed refresh never empties it: the last known good keys stay in
use while Entra is unreachable or answers errors or garbage. Every fetch has a total deadline.

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
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey, RSAPublicNumbers

from accounts.claims import v2_issuer
from lib import metrics
from lib.env import is_loopback

logger = logging.getLogger(__name__)

MIN_RSA_BITS = 2048


class JwksUnavailable(Exception):
    """No usable keys could be fetched (Entra unreachable, slow, an error status or garbage)."""


@dataclass(frozen=True)
class ProviderKey:
    """One RSA verification key from a directory's JWKS, with the JWK's own ``issuer`` if any."""

    kid: str
    public_key: RSAPublicKey
    issuer: str | None = None


@dataclass
class DirectoryKeys:
    """The cache entry of one directory; ``*_at`` are readings of the cache's ``clock``."""

    keys: dict[str, ProviderKey] = field(default_factory=dict)
    fetched_at: float | None = None
    attempted_at: float | None = None
    kid_refetch_at: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    refresher: threading.Thread | None = None


class JwksCache:
    """Signing keys per (authority, directory), fetched on demand and kept per worker process.

    Seams for tests are class attributes: ``clock`` for cache ages and throttles, and (also
    constructor arguments) ``timeout`` for the fetch deadline, ``refresh_in_background``.
    """

    clock: Callable[[], float] = time.time
    timeout = 3.0  # seconds for one whole refresh (discovery + JWKS, connect + read)
    refresh_after = 3600  # Entra publishes new keys well before signing with them
    retry_after = 30  # after a failed fetch, wait this long before trying again
    kid_refetch_interval = 300
    max_bytes = 256 * 1024
    max_keys = 100
    refresh_in_background = True

    def __init__(
        self,
        *,
        timeout: float | None = None,
        refresh_in_background: bool | None = None,
    ) -> None:
        if timeout is not None:
            self.timeout = timeout
        if refresh_in_background is not None:
            self.refresh_in_background = refresh_in_background
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

        Raises ``JwksUnavailable`` only when nothing is cached and the fetch fails.
        """
        entry = self.directory(authority=authority, tid=tid)
        now = self.clock()
        if not entry.keys:
            self._first_fetch(entry, authority=authority, tid=tid, now=now)
        elif self._refresh_due(entry, now):
            self._refresh_later(entry, authority=authority, tid=tid, now=now)
        key = entry.keys.get(kid)
        if key is None and self._kid_refetch_allowed(entry, now):
            with entry.lock:
                key = entry.keys.get(kid)
                if key is None and self._kid_refetch_allowed(entry, now):
                    entry.kid_refetch_at = now
                    with contextlib.suppress(JwksUnavailable):  # logged; the cached keys stay
                        self._refresh(entry, authority=authority, tid=tid, now=now)
                    key = entry.keys.get(kid)
        return key

    def _first_fetch(self, entry: DirectoryKeys, *, authority: str, tid: str, now: float) -> None:
        with entry.lock:
            if entry.keys:
                return  # another thread fetched them while we waited
            if entry.attempted_at is not None and now - entry.attempted_at < self.retry_after:
                raise JwksUnavailable("the last fetch failed moments ago")
            self._refresh(entry, authority=authority, tid=tid, now=now)

    def _refresh_due(self, entry: DirectoryKeys, now: float) -> bool:
        fetched = entry.fetched_at if entry.fetched_at is not None else now
        attempted = entry.attempted_at if entry.attempted_at is not None else fetched
        return now - fetched >= self.refresh_after and now - attempted >= self.retry_after

    def _kid_refetch_allowed(self, entry: DirectoryKeys, now: float) -> bool:
        return entry.kid_refetch_at is None or now - entry.kid_refetch_at >= self.kid_refetch_interval

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
                with entry.lock, contextlib.suppress(JwksUnavailable):
                    self._refresh(entry, authority=authority, tid=tid, now=now)

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
    """On the authority's own host: https, or plain http on a loopback authority (the fake Entra in tests).

    Entra publishes its keys on the authority's host in every cloud; a discovery document pointing
    elsewhere is refused rather than followed (B2C or other issuers will need their own rule).
    """
    parts = urlsplit(uri)
    try:
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise JwksUnavailable("the jwks_uri is not a plain absolute URL") from None
    if parts.username or parts.password or not parts.hostname:
        raise JwksUnavailable("the jwks_uri is not a plain absolute URL")
    authority_parts = urlsplit(authority)
    if parts.hostname != authority_parts.hostname:
        raise JwksUnavailable("the jwks_uri is not on the authority's host")
    if parts.scheme == "https":
        return
    same_host = (parts.hostname, parts.port) == (authority_parts.hostname, authority_parts.port)
    if parts.scheme == "http" and same_host and is_loopback(parts.hostname):
        return
    raise JwksUnavailable("the jwks_uri is not https (plain http only on the loopback authority)")


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
