"""Verify the token issuer's access tokens in a downstream service, and enforce their claims.

    from issuer_verify import TokenVerifier, InvalidToken

    verifier = TokenVerifier(issuer="https://issuer.example.com", audience="api://orders")
    claims = verifier.verify(token)            # raises InvalidToken(reason=...) on anything wrong
    claims.subject, claims.tenant, claims.roles, claims.scopes, claims.client_id
    claims.has_scope("orders.approve")
    claims = await verifier.verify_async(token)

Adapters: ``issuer_verify.django`` (Django REST framework) and ``issuer_verify.fastapi``.
"""

from issuer_verify.claims import Claims
from issuer_verify.errors import REASONS, InvalidToken
from issuer_verify.jose import SUPPORTED_ALGORITHMS
from issuer_verify.jwks import JwksCache
from issuer_verify.verifier import TokenVerifier

__all__ = ["REASONS", "SUPPORTED_ALGORITHMS", "Claims", "InvalidToken", "JwksCache", "TokenVerifier"]
__version__ = "1.0.0"
