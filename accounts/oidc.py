"""Portal sign-in with Entra ID: mozilla-django-oidc's backend, with the checks it leaves out.

The library runs the authorization-code flow (state, nonce, PKCE) and calls small overridable steps;
this backend overrides only those steps:

- ``retrieve_matching_jwk``: the key comes from ``accounts.entra.jwks_cache``, the JWKS cache the
  exchange already uses (discovery, background refresh, throttled refetch on an unknown ``kid``,
  last known good keys while Entra is down, short timeouts), not one uncached fetch per sign-in.
- ``get_payload_data``: RS256 only; ``aud`` is exactly our client id, ``iss`` exactly the home
  directory's v2 issuer, ``tid`` the home directory; ``exp`` and ``iat`` required (the library checks
  the signature and nonce but neither ``aud`` nor ``iss``).
- ``get_userinfo``: the verified ID token's claims; Graph's userinfo is never called.
- ``filter_users_by_claims`` / ``create_user`` / ``update_user``: users are matched by (tid, oid),
  never by email, and their rights are re-evaluated at every sign-in (``accounts.portal_users``).
- ``authenticate``: a refused token, a provider error or an account without rights is a failed
  sign-in (the library then redirects to ``LOGIN_REDIRECT_URL_FAILURE``), not a 400 or a 500.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

import jwt
import requests
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY
from django.core.exceptions import SuspiciousOperation
from django.db.models import QuerySet
from django.http import HttpRequest
from django.shortcuts import resolve_url
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from accounts.claims import CLOCK_LEEWAY, TENANT_TEMPLATE, v2_issuer
from accounts.entra import jwks_cache
from accounts.models import User
from accounts.portal_users import PortalIdentity, portal_user_create, portal_user_rights_update
from accounts.provider_keys import JwksCache, JwksUnavailable, ProviderKey
from lib.guid import is_guid

logger = logging.getLogger(__name__)

BACKEND_PATH = "accounts.oidc.EntraBackend"
ALGORITHM = "RS256"


class EntraBackend(OIDCAuthenticationBackend):
    """Signs portal users in with a verified Entra ID token from the home directory (PORTAL_TENANT_ID)."""

    jwks: JwksCache = jwks_cache
    leeway = CLOCK_LEEWAY

    @property
    def home_tid(self) -> str:
        return settings.PORTAL_TENANT_ID

    @property
    def issuer(self) -> str:
        return v2_issuer(settings.ENTRA_AUTHORITY, self.home_tid)

    def authenticate(self, request: HttpRequest | None, **kwargs: Any) -> User | None:
        try:
            user = super().authenticate(request, **kwargs)
        except (
            SuspiciousOperation,
            jwt.InvalidTokenError,
            JwksUnavailable,
            requests.RequestException,
        ) as exc:
            logger.warning("Entra sign-in refused: %s", exc)
            return None
        if user is not None and not (user.is_active and user.is_staff):
            logger.info("Entra sign-in of %s refused: no portal rights", user.username)
            return None
        return user

    def get_user(self, user_id: Any) -> User | None:
        # The library's get_user skips ModelBackend's is_active check; a deactivated admin's
        # session must stop working at once.
        user = super().get_user(user_id)
        return user if user is not None and self.user_can_authenticate(user) else None

    def get_token(self, payload: dict[str, Any]) -> dict[str, Any]:
        answer = super().get_token(payload)
        if not isinstance(answer, dict) or not isinstance(answer.get("id_token"), str):
            raise SuspiciousOperation("the token endpoint returned no ID token")
        return answer

    def retrieve_matching_jwk(self, token: str) -> ProviderKey:
        header = jwt.get_unverified_header(token)
        kid = header.get("kid")
        if header.get("alg") != ALGORITHM or not isinstance(kid, str):
            raise SuspiciousOperation(f"ID token header refused (alg {header.get('alg')!r})")
        key = self.jwks.key_get(authority=settings.ENTRA_AUTHORITY, tid=self.home_tid, kid=kid)
        if key is None:
            raise SuspiciousOperation("ID token signed by a key the directory does not publish")
        return key

    def get_payload_data(self, token: str, key: ProviderKey) -> dict[str, Any]:
        try:
            claims = jwt.decode(
                token,
                key.public_key,
                algorithms=[ALGORITHM],
                audience=self.OIDC_RP_CLIENT_ID,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iat", "aud", "iss", "tid", "oid"], "strict_aud": True},
            )
        except jwt.InvalidTokenError as exc:
            raise SuspiciousOperation(f"ID token refused: {exc}") from None
        if claims["tid"] != self.home_tid:
            raise SuspiciousOperation("ID token from another directory")
        if key.issuer is not None and key.issuer.replace(TENANT_TEMPLATE, self.home_tid) != self.issuer:
            raise SuspiciousOperation("ID token signed by a key of another issuer")
        return claims

    def get_userinfo(self, access_token: str, id_token: str, payload: dict[str, Any]) -> dict[str, Any]:
        return payload

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        return is_guid(claims.get("tid")) and is_guid(claims.get("oid"))

    def filter_users_by_claims(self, claims: dict[str, Any]) -> QuerySet[User]:
        identity = PortalIdentity.from_claims(claims)
        return self.UserModel.objects.filter(entra_tid=identity.tid, entra_oid=identity.oid)

    def create_user(self, claims: dict[str, Any]) -> User:
        identity = PortalIdentity.from_claims(claims)
        return portal_user_rights_update(user=portal_user_create(identity=identity), identity=identity)

    def update_user(self, user: User, claims: dict[str, Any]) -> User:
        return portal_user_rights_update(user=user, identity=PortalIdentity.from_claims(claims))


def oidc_enabled() -> bool:
    """Whether Entra sign-in is configured (its backend is installed)."""
    return BACKEND_PATH in settings.AUTHENTICATION_BACKENDS


def provider_logout_url(request: HttpRequest) -> str:
    """Where logging out sends the browser: Entra's end-session endpoint after an Entra sign-in.

    Entra then returns to ``post_logout_redirect_uri`` (our login page), which the app registration
    must list among its redirect URIs. A password session just goes back to the login page.
    """
    back = resolve_url(settings.LOGOUT_REDIRECT_URL)
    if request.session.get(BACKEND_SESSION_KEY) != BACKEND_PATH:
        return back
    query = urlencode({"post_logout_redirect_uri": request.build_absolute_uri(back)})
    return f"{settings.OIDC_OP_LOGOUT_ENDPOINT}?{query}"
