"""Rate limits of the exchange: per client address (before any work) and per verified principal."""

from __future__ import annotations

from rest_framework.throttling import SimpleRateThrottle


class AddressRateThrottle(SimpleRateThrottle):
    """Per client address; behind proxies the address comes from NUM_PROXIES (DRF's rule)."""

    scope = "exchange_address"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class PrincipalRateThrottle(SimpleRateThrottle):
    """Per principal, keyed by the *verified* (tid, oid): a forged token cannot spend someone's quota."""

    scope = "exchange_principal"

    principal_key = ""

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.principal_key}

    def wait_for(self, principal_key: str) -> float | None:
        """Count one request for the principal; the seconds to wait if over the rate, else None."""
        self.principal_key = principal_key
        # DRF's sliding window, keyed by the principal instead of the request: get_cache_key above
        # reads neither argument, so there is no request or view to pass.
        return None if self.allow_request(None, None) else self.wait()  # type: ignore[arg-type]
