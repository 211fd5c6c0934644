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

    def get_cache_key(self, request, view) -> str:  # pragma: no cover - wait_for is the entry point
        raise NotImplementedError("use wait_for(principal_key)")

    def wait_for(self, principal_key: str) -> float | None:
        """Count one request for the principal; the seconds to wait if over the rate, else None."""
        if self.rate is None:
            return None
        self.key = self.cache_format % {"scope": self.scope, "ident": principal_key}
        self.history = self.cache.get(self.key, [])
        self.now = self.timer()
        while self.history and self.history[-1] <= self.now - self.duration:
            self.history.pop()
        if len(self.history) >= self.num_requests:
            return self.wait()
        self.throttle_success()
        return None
