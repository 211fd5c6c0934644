"""Microsoft Entra ID's names for token validation, kept from when Entra was the only provider.

Entra tokens are validated like every provider's (``accounts.identity``: the directory their ``iss``
designates, its own keys, Entra's claim rules); these are the same objects under the names their
callers know: the portal's sign-in takes its keys from ``jwks_cache``, shared with the exchange.
"""

from __future__ import annotations

from accounts.claims import EntraIdentity, TokenRejected
from accounts.identity import TokenValidator, jwks_cache, token_validate
from accounts.provider_keys import JwksUnavailable

__all__ = [
    "EntraIdentity",
    "EntraTokenValidator",
    "JwksUnavailable",
    "TokenRejected",
    "entra_token_validate",
    "jwks_cache",
]

EntraTokenValidator = TokenValidator


def entra_token_validate(*, token: str) -> EntraIdentity:
    """Validate an access token (of an Entra directory or any other trusted provider)."""
    return token_validate(token=token)
