"""``InvalidToken`` and its reason codes: what the verifier tells its caller about a refused token."""

from __future__ import annotations

# Reason codes are part of the public contract: callers log them and count them, so they never
# change meaning. Each maps to a fixed description that is safe to show the caller of the API
# (RFC 6750 ``error_description``): it names a check, never a value from the token.
REASONS: dict[str, str] = {
    "malformed": "the token is not a well-formed signed JWT",
    "unsupported_alg": "the token's signature algorithm is not accepted",
    "crit": "the token has critical header extensions",
    "header": "the token's header carries members that are not accepted",
    "typ": "the token is not an access token (typ at+jwt)",
    "kid_unknown": "the issuer publishes no key with the token's key id",
    "key_mismatch": "the issuer's key does not match the token's algorithm",
    "jwks_unavailable": "the issuer's keys cannot be fetched; try again later",
    "signature": "the token's signature is not valid",
    "issuer": "the token is from another issuer",
    "audience": "the token is meant for another audience",
    "expired": "the token has expired",
    "not_yet_valid": "the token is not valid yet",
    "issued_in_future": "the token claims to be issued in the future",
    "missing_claim": "a required claim is missing or malformed",
}


class InvalidToken(Exception):
    """The token was refused; ``reason`` is one of ``REASONS`` (a stable code).

    ``description`` is the fixed text of the reason; ``detail`` (may be None) says more for logs,
    such as which claim is missing. Neither ever holds the token or a value taken from it.
    """

    def __init__(self, reason: str, detail: str | None = None) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown reason code {reason!r}")
        self.reason = reason
        self.description = REASONS[reason]
        self.detail = detail
        super().__init__(f"{reason}: {detail or self.description}")

    def __reduce__(self) -> tuple[type[InvalidToken], tuple[str, str | None]]:
        # Rebuilt from its own arguments (pickling, process pools), not from the message.
        return type(self), (self.reason, self.detail)
