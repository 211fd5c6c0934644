"""The portal's middleware, skipped by the stateless endpoints that never use what it sets up.

Sessions, the signed-in user, the Entra session refresh, messages and the history's request are
the portal's; the token exchange, the JWKS, the metadata, the probes and ``/metrics`` read none of
them, and for those paths each of these middleware did work (an object or two per request, a
context variable, the refresh's URL checks) whose result nobody read. For a path in
``STATELESS_PATHS`` each class here hands the request straight on; every other path goes through
the original unchanged. They subclass the originals, so Django's admin checks still find them,
and none of the originals has a ``process_view`` hook that skipping could bypass. CSRF, security
headers, CORS, the content security policy and host validation run for every path as before.
"""

from __future__ import annotations

from collections.abc import Callable

from asgiref.sync import iscoroutinefunction
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest, HttpResponse
from simple_history.middleware import HistoryRequestMiddleware

from accounts.portal_sessions import EntraSessionRefresh

# Exact paths (no session, no user, no message on any of them); the portal lives under /admin/.
STATELESS_PATHS = frozenset(
    {
        "/oauth2/token",
        "/.well-known/jwks.json",
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
        "/healthz",
        "/readyz",
        "/metrics",
    }
)


class PortalOnly:
    """Mixed into a ``MiddlewareMixin`` middleware: hand stateless requests straight on."""

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info in STATELESS_PATHS and not iscoroutinefunction(self):
            return self.get_response(request)  # type: ignore[attr-defined]
        return super().__call__(request)  # type: ignore[misc]


class PortalSessionMiddleware(PortalOnly, SessionMiddleware):
    pass


class PortalAuthenticationMiddleware(PortalOnly, AuthenticationMiddleware):
    pass


class PortalEntraSessionRefresh(PortalOnly, EntraSessionRefresh):
    pass


class PortalMessageMiddleware(PortalOnly, MessageMiddleware):
    pass


def portal_history_middleware(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable:
    """simple_history's request middleware (a function) for every path but the stateless ones."""
    history = HistoryRequestMiddleware(get_response)
    if iscoroutinefunction(history):
        return history

    def middleware(request: HttpRequest) -> HttpResponse:
        if request.path_info in STATELESS_PATHS:
            return get_response(request)
        return history(request)

    return middleware


portal_history_middleware.sync_capable = True  # type: ignore[attr-defined]
portal_history_middleware.async_capable = False  # type: ignore[attr-defined]
