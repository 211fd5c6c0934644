"""``TokenVerifier``: one issuer, one audience; every check of the issuer's access tokens, in order.

1. Parse strictly (``jose``): size, three canonical base64url segments, JSON objects.
2. Header: ``alg`` from the allow-list (ES256, RS256, PS256; never ``none`` or HMAC), no ``crit``,
   nothing but ``alg``/``typ``/``kid``, ``typ`` ``at+jwt``, a ``kid``.
3. The key ``kid`` from the issuer's JWKS (``jwks``), whose own algorithm must be the header's.
4. The signature, over exactly the bytes parsed, by the scheme that algorithm fixes (``keys``).
5. Claims (``claims``): ``iss`` exact, ``aud`` holds ours, ``exp``/``nbf``/``iat`` within the
   leeway, ``sub``, ``tenant``, ``jti``, ``client_id``, ``scope`` present.

Anything wrong raises ``InvalidToken`` with a reason code; no other exception escapes ``verify``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable

from issuer_verify.claims import Claims, claims_check
from issuer_verify.errors import InvalidToken
from issuer_verify.jose import SUPPORTED_ALGORITHMS, SignedToken, header_check, token_parse
from issuer_verify.jwks import JwksCache
from issuer_verify.keys import VerificationKey

MAX_LEEWAY = 60


class TokenVerifier:
    """Verifies the issuer's access tokens for one audience; thread-safe, one per process is enough.

    Seam for tests: ``clock`` (the wall clock the lifetime rules read) is a class attribute.
    """

    clock: Callable[[], float] = time.time
    max_length = 16 * 1024

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        jwks_uri: str | None = None,
        leeway: float = 30,
        algorithms: Iterable[str] = SUPPORTED_ALGORITHMS,
        min_cache_age: float = 60,
        max_cache_age: float = 3600,
        refetch_cooldown: float = 30,
        fetch_timeout: float = 3.0,
        stale_if_error: float = 86_400,
    ) -> None:
        if not isinstance(audience, str) or not audience:
            raise ValueError("audience must be a non-empty string")
        if isinstance(leeway, bool) or not isinstance(leeway, int | float) or not 0 <= leeway <= MAX_LEEWAY:
            raise ValueError(f"leeway must be a number of seconds from 0 to {MAX_LEEWAY}, got {leeway!r}")
        chosen = frozenset(algorithms)
        if not chosen or not chosen <= set(SUPPORTED_ALGORITHMS):
            raise ValueError(f"algorithms must be a non-empty subset of {', '.join(SUPPORTED_ALGORITHMS)}")
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self.algorithms = chosen
        self.jwks = JwksCache(
            issuer=issuer,
            jwks_uri=jwks_uri,
            min_cache_age=min_cache_age,
            max_cache_age=max_cache_age,
            refetch_cooldown=refetch_cooldown,
            fetch_timeout=fetch_timeout,
            stale_if_error=stale_if_error,
        )

    def verify(self, token: object) -> Claims:
        """The token's claims; ``InvalidToken`` if any check fails. May fetch the JWKS (bounded)."""
        parsed, alg, kid = self._unsigned_checks(token)
        return self._signed_checks(parsed, alg, self.jwks.key(kid))

    async def verify_async(self, token: object) -> Claims:
        """``verify`` for an event loop: a fetch, when one is needed, runs in a worker thread."""
        parsed, alg, kid = self._unsigned_checks(token)
        key = self.jwks.fresh_key(kid)
        if key is None:
            key = await asyncio.to_thread(self.jwks.key, kid)
        return self._signed_checks(parsed, alg, key)

    def _unsigned_checks(self, token: object) -> tuple[SignedToken, str, str]:
        parsed = token_parse(token, max_length=self.max_length)
        alg, kid = header_check(parsed.header, algorithms=self.algorithms)
        if not parsed.signature:
            raise InvalidToken("signature", "the signature is empty")
        return parsed, alg, kid

    def _signed_checks(self, parsed: SignedToken, alg: str, key: VerificationKey) -> Claims:
        key.verify(algorithm=alg, signature=parsed.signature, signing_input=parsed.signing_input)
        return claims_check(
            parsed.claims, issuer=self.issuer, audience=self.audience, now=self.clock(), leeway=self.leeway
        )
