"""Portal sessions: an absolute lifetime, and rights re-checked against Entra when the ID token expires.

- ``session_lifetime_start`` (on ``user_logged_in``): a session ends ``PORTAL_SESSION_MAX_AGE``
  seconds after sign-in, however active it is; a silent renewal does not sign in again, so it does
  not move the end.
- ``EntraSessionRefresh`` (middleware): mozilla-django-oidc's ``SessionRefresh``. Once
  ``OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS`` have passed since the ID token was obtained, the next
  request of an Entra session is sent to Entra with ``prompt=none``; the callback then runs the
  backend's ``update_user``, which sets the rights from the new ID token. Unlike the library, writes
  (POST and the like) are sent too: a write must not slip through on rights that were withdrawn.
  Password sessions (development) are left alone and simply end with their lifetime.
- ``EntraCallbackView``: a renewal that fails (the admin role removed with no tenant to administer,
  the account disabled in Entra, a refused ID token) signs the session out, rather than leaving a
  signed-in session that the middleware would send back to Entra on every request.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib import auth
from django.contrib.auth import BACKEND_SESSION_KEY
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from mozilla_django_oidc.middleware import SessionRefresh
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView

from accounts.oidc import BACKEND_PATH


def session_lifetime_start(*, request: HttpRequest | None, **kwargs: Any) -> None:
    """Fix the session's end at sign-in: an absolute date, which later saves of the session keep."""
    if request is not None and hasattr(request, "session"):
        request.session.set_expiry(timezone.now() + timedelta(seconds=settings.PORTAL_SESSION_MAX_AGE))


class EntraSessionRefresh(SessionRefresh):
    """Re-check an Entra session's rights with Entra once its ID token is due, for reads and writes."""

    def is_refreshable_url(self, request: HttpRequest) -> bool:
        # The library's rule without its "GET only": any method of a session signed in with Entra,
        # except the exempt routes (OIDC_EXEMPT_URLS: sign-out, everything outside the portal; and
        # the library's own sign-in routes).
        return (
            request.path not in self.exempt_urls
            and not any(pattern.match(request.path) for pattern in self.exempt_url_patterns)
            and request.user.is_authenticated
            and request.session.get(BACKEND_SESSION_KEY) == BACKEND_PATH
        )


class EntraCallbackView(OIDCAuthenticationCallbackView):
    """The OIDC callback; a failed sign-in or renewal leaves no signed-in session behind."""

    def login_failure(self) -> HttpResponse:
        if self.request.user.is_authenticated:
            auth.logout(self.request)
        return super().login_failure()
