"""Validation of identity providers' access tokens: ``token_validate`` and its template method.

``TokenValidator.validate`` runs small overridable steps in a fixed order: size and parse
(``accounts.jws``), header rules, the provider the token's unverified ``iss`` designates (before any
network call, ``accounts.providers``), the provider's algorithm allow-list, the key from that
provider's own JWKS (for B2C, from the JWKS of the user flow the token names), the signature, then
the pure claim rules of the provider's kind (``accounts.claims``). Subclass the step you need;
don't copy the flow.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping

from accounts.claims import EntraIdentity, Identity, TokenRejected, provider_claims_evaluate, user_flow_of
from accounts.dev_directory import DEV_TENANT_ID, dev_directory_enabled, dev_signing_key_get
from accounts.identity_provider import AZURE_AD_B2C, ENTRA, ENTRA_KINDS, IdentityProvider
from accounts.jws import ParsedToken, signature_verify, token_parse
from accounts.provider_key_store import ProviderKeySetStore
from accounts.provider_keys import JwksCache, JwksUnavailable, KeysRefused, ProviderKey, provider_key_source
from accounts.providers import providers_trusted

__all__ = [
    "EntraIdentity",
    "Identity",
    "JwksUnavailable",
    "TokenRejected",
    "TokenValidator",
    "jwks_cache",
    "token_validate",
]

# Providers' kids are base64url thumbprints or hex; anything else (paths, quotes, spaces) is refused unread.
KID = re.compile(r"[A-Za-z0-9_=.-]{1,128}")
# Headers that carry or point at key material. No provider we trust sends them, so their mere presence
# marks a forged or confused token: refusing it outright leaves no doubt that any code path could honour them.
KEY_CARRYING_HEADERS = frozenset({"jku", "x5u", "x5c", "jwk"})

# One per worker process; the providers' last known good keys are shared with the others in the database.
jwks_cache = JwksCache(store=ProviderKeySetStore())


class TokenValidator:
    """Turns a provider's access token into an ``Identity`` or raises ``TokenRejected``.

    ``JwksUnavailable`` means the token could not be checked at all: its provider's keys cannot be
    had (unreachable, nothing usable in memory or stored). That is an outage, not a verdict.

    Seams for tests: ``clock`` (of the lifetime rules), ``jwks`` (the key cache).
    """

    clock: Callable[[], float] = time.time
    max_length = 16 * 1024

    def __init__(self, *, jwks: JwksCache | None = None) -> None:
        self.jwks = jwks if jwks is not None else jwks_cache

    def validate(self, token: object) -> Identity:
        parsed = token_parse(token, max_length=self.max_length)
        self.header_check(parsed.header)
        provider = self.provider_choose(parsed.claims)  # unverified yet: it only picks rules and keys
        algorithm = self.algorithm_check(parsed.header, provider=provider)
        key = self.key_find(provider=provider, claims=parsed.claims, kid=parsed.header["kid"])
        self.signature_check(parsed, key=key, algorithm=algorithm)
        return provider_claims_evaluate(
            claims=parsed.claims, provider=provider, now=self.clock(), key_issuer=key.issuer
        )

    def header_check(self, header: Mapping[str, object]) -> None:
        """No key-carrying headers, no ``crit``, a plain ``kid``; the algorithm is the provider's to allow."""
        if KEY_CARRYING_HEADERS & header.keys():
            raise TokenRejected("header", "keys are taken only from the provider's JWKS (jku/x5u/x5c/jwk)")
        if "crit" in header:
            # We implement no JWS extension: any critical one is one we don't understand (RFC 7515 4.1.11).
            raise TokenRejected("header", "the token has critical header extensions")
        kid = header.get("kid")
        if not isinstance(kid, str) or not KID.fullmatch(kid):
            raise TokenRejected("header", "the token has no usable key id (kid)")

    def provider_choose(self, claims: Mapping[str, object]) -> IdentityProvider:
        return providers_trusted().provider_of(claims)

    def algorithm_check(self, header: Mapping[str, object], *, provider: IdentityProvider) -> str:
        """One of the provider's algorithms (RS256, PS256, ES256 at most), refused before any key lookup:
        ``none`` and HMAC never are."""
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in provider.algorithms:
            raise TokenRejected(
                "algorithm", f"only {' or '.join(provider.algorithms)} signatures are accepted"
            )
        return algorithm

    def key_find(self, *, provider: IdentityProvider, claims: Mapping[str, object], kid: str) -> ProviderKey:
        """The key ``kid`` from the provider's own JWKS (or the development directory's key).

        Lets ``JwksUnavailable`` through: without keys the token is neither good nor bad. A provider
        whose discovery document we refuse makes its tokens refused.
        """
        if provider.kind == ENTRA and provider.name == DEV_TENANT_ID and dev_directory_enabled():
            key = dev_signing_key_get(kid=kid)
        else:
            # The user flow is read from unverified claims, but it only picks which of the provider's
            # own flows' keys to use; the claim rules check it again once the signature holds.
            user_flow = user_flow_of(claims, provider=provider) if provider.kind == AZURE_AD_B2C else None
            source = provider_key_source(provider, user_flow=user_flow)
            try:
                key = self.jwks.key_find(source=source, kid=kid)
            except KeysRefused:
                raise TokenRejected(
                    "provider_keys",
                    "the identity provider's discovery document is refused; its tokens cannot be checked",
                ) from None
        if key is None:
            holder = "directory" if provider.kind in ENTRA_KINDS else "provider"
            raise TokenRejected("kid_unknown", f"its {holder} publishes no such signing key")
        return key

    def signature_check(self, parsed: ParsedToken, *, key: ProviderKey, algorithm: str) -> None:
        signature_verify(parsed, key=key, algorithm=algorithm)


_validator = TokenValidator()


def token_validate(*, token: str) -> Identity:
    """Validate an access token of any trusted provider; raises ``TokenRejected`` naming the failed
    check, or ``JwksUnavailable`` when the provider's keys cannot be had (an outage)."""
    return _validator.validate(token)
