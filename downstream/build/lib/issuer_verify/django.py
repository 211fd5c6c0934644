"""Django REST framework adapter: stateless bearer authentication and permissions from the claims.

    # settings.py
    ISSUER_VERIFY = {"ISSUER": "https://issuer.example.com", "AUDIENCE": "api://orders"}
    REST_FRAMEWORK = {
        "DEFAULT_AUTHENTICATION_CLASSES": ["issuer_verify.django.IssuerTokenAuthentication"],
        "UNAUTHENTICATED_USER": None,  # no django.contrib.auth needed
    }

    # views.py
    class OrderListApi(APIView):
        permission_classes = [RequireScopes("orders.read")]

        def get(self, request):
            claims = request_claims(request)  # typed; the same object as request.auth
            orders = order_list(tenant=claims.tenant)  # request.user is a TokenPrincipal

Optional ``ISSUER_VERIFY`` keys: ``REALM`` (of ``WWW-Authenticate``; default the audience) and the
``TokenVerifier`` options ``JWKS_URI``, ``LEEWAY``, ``ALGORITHMS``, ``MIN_CACHE_AGE``,
``MAX_CACHE_AGE``, ``REFETCH_COOLDOWN``, ``FETCH_TIMEOUT``, ``STALE_IF_ERROR``.

Answers follow RFC 6750 §3: no token is a 401 with ``WWW-Authenticate: Bearer realm="…"``; a refused
token a 401 with ``error="invalid_token"``; a missing scope a 403 with ``error="insufficient_scope"``
and the ``scope`` needed. When the issuer's keys cannot be had at all (nothing cached and the issuer
unreachable) the answer is 503 with ``Retry-After``, so clients do not throw away good tokens.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from rest_framework import exceptions, status
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from issuer_verify.claims import SCOPE_TOKEN, Claims
from issuer_verify.errors import InvalidToken
from issuer_verify.verifier import TokenVerifier

SETTING = "ISSUER_VERIFY"
OPTIONS = {
    "JWKS_URI": "jwks_uri",
    "LEEWAY": "leeway",
    "ALGORITHMS": "algorithms",
    "MIN_CACHE_AGE": "min_cache_age",
    "MAX_CACHE_AGE": "max_cache_age",
    "REFETCH_COOLDOWN": "refetch_cooldown",
    "FETCH_TIMEOUT": "fetch_timeout",
    "STALE_IF_ERROR": "stale_if_error",
}
REALM = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]{1,200}")  # printable, no quote or backslash
B64TOKEN = re.compile(rb"[A-Za-z0-9._~+/-]+=*")  # RFC 6750 §2.1
RETRY_AFTER = 5

_lock = threading.Lock()
_configured: tuple[TokenVerifier, str] | None = None


def verifier() -> TokenVerifier:
    """The process's verifier, built once from ``settings.ISSUER_VERIFY``."""
    return _configuration()[0]


def realm() -> str:
    return _configuration()[1]


def _configuration() -> tuple[TokenVerifier, str]:
    global _configured
    configured = _configured
    if configured is None:
        with _lock:
            configured = _configured
            if configured is None:
                configured = _configured = _configure(getattr(settings, SETTING, None))
    return configured


def _configure(options: object) -> tuple[TokenVerifier, str]:
    if not isinstance(options, dict):
        raise ImproperlyConfigured(f'{SETTING}: a dict with at least "ISSUER" and "AUDIENCE" is required')
    unknown = options.keys() - {"ISSUER", "AUDIENCE", "REALM", *OPTIONS}
    if unknown:
        raise ImproperlyConfigured(f"{SETTING}: unknown keys {', '.join(sorted(map(str, unknown)))}")
    for required in ("ISSUER", "AUDIENCE"):
        if not options.get(required):
            raise ImproperlyConfigured(f'{SETTING}["{required}"]: required')
    chosen_realm = options.get("REALM", options["AUDIENCE"])
    if not isinstance(chosen_realm, str) or not REALM.fullmatch(chosen_realm):
        raise ImproperlyConfigured(f'{SETTING}["REALM"]: printable characters without quotes or backslashes')
    keywords = {OPTIONS[name]: value for name, value in options.items() if name in OPTIONS}
    try:
        built = TokenVerifier(issuer=options["ISSUER"], audience=options["AUDIENCE"], **keywords)
    except (TypeError, ValueError) as exc:
        raise ImproperlyConfigured(f"{SETTING}: {exc}") from None
    return built, chosen_realm


def _forget_configuration(*, setting: str, **kwargs: Any) -> None:
    """A changed ``ISSUER_VERIFY`` (``override_settings``) builds a new verifier on next use."""
    global _configured
    if setting == SETTING:
        with _lock:
            _configured = None


setting_changed.connect(_forget_configuration)


class TokenPrincipal:
    """``request.user`` for a verified token: who and where, from the claims; no database row."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False

    def __init__(self, claims: Claims) -> None:
        self.claims = claims

    @property
    def pk(self) -> str:
        return self.claims.subject

    id = pk
    username = pk

    @property
    def tenant(self) -> str:
        return self.claims.tenant

    def get_username(self) -> str:
        return self.claims.subject

    def has_scope(self, *scopes: str) -> bool:
        return self.claims.has_scope(*scopes)

    def has_role(self, *roles: str) -> bool:
        return self.claims.has_role(*roles)

    # Django's model permissions do not apply to a token's bearer: its rights are its scopes.
    def has_perm(self, perm: str, obj: object = None) -> bool:
        return False

    def has_perms(self, perm_list: object, obj: object = None) -> bool:
        return False

    def has_module_perms(self, app_label: str) -> bool:
        return False

    def __str__(self) -> str:
        return f"{self.claims.subject}@{self.claims.tenant}"

    def __repr__(self) -> str:
        return f"<TokenPrincipal {self}>"


class IssuerUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "the issuer's keys cannot be fetched; try again later"
    default_code = "temporarily_unavailable"
    wait = RETRY_AFTER  # DRF's exception handler turns it into Retry-After


class InsufficientScope(exceptions.PermissionDenied):
    """403 with ``WWW-Authenticate: Bearer error="insufficient_scope", scope="…"`` (RFC 6750 §3.1)."""

    default_detail = "the token lacks a scope this request needs"
    default_code = "insufficient_scope"

    def __init__(self, scopes: tuple[str, ...]) -> None:
        super().__init__()
        self.auth_header = (
            f'Bearer realm="{realm()}", error="insufficient_scope", '
            f'error_description="{self.default_detail}", scope="{" ".join(scopes)}"'
        )


class IssuerTokenAuthentication(BaseAuthentication):
    """``Authorization: Bearer <token>`` verified by the kit; returns (``TokenPrincipal``, ``Claims``).

    A request without a bearer token is left unauthenticated (the permissions decide, and DRF
    answers 401); a bearer token that fails any check is a 401 ``invalid_token`` at once.
    """

    def authenticate(self, request: Request) -> tuple[TokenPrincipal, Claims] | None:
        header = get_authorization_header(request)
        scheme, _, credentials = header.partition(b" ")
        if not header or scheme.lower() != b"bearer":
            return None
        credentials = credentials.lstrip(b" ")
        try:
            if not B64TOKEN.fullmatch(credentials):
                raise InvalidToken("malformed", "the Authorization header is not Bearer <token>")
            claims = verifier().verify(credentials.decode("ascii"))
        except InvalidToken as exc:
            if exc.reason == "jwks_unavailable":
                raise IssuerUnavailable() from None
            request._issuer_verify_error = exc  # type: ignore[attr-defined]  # read by authenticate_header
            raise exceptions.AuthenticationFailed(exc.description, code=exc.reason) from None
        return TokenPrincipal(claims), claims

    def authenticate_header(self, request: Request) -> str:
        error = getattr(request, "_issuer_verify_error", None)
        if error is None:
            return f'Bearer realm="{realm()}"'
        return f'Bearer realm="{realm()}", error="invalid_token", error_description="{error.description}"'


def request_claims(request: Request) -> Claims:
    """The verified claims of the request (typed), or ``NotAuthenticated`` (401) when it has none."""
    claims = _claims(request)
    if claims is None:
        raise exceptions.NotAuthenticated()
    return claims


def _claims(request: Request) -> Claims | None:
    return request.auth if isinstance(request.auth, Claims) else None


class HasScope(BasePermission):
    """Every scope in ``required_scopes`` (of this class, or else of the view) must be in the token."""

    required_scopes: tuple[str, ...] = ()

    def has_permission(self, request: Request, view: Any) -> bool:
        claims = _claims(request)
        if claims is None:
            return False  # DRF answers 401 when nobody authenticated, 403 otherwise
        scopes = self.required_scopes or tuple(getattr(view, "required_scopes", ()))
        if not scopes:
            raise ImproperlyConfigured(f"{type(view).__name__}: HasScope needs required_scopes")
        if not claims.has_scope(*scopes):
            raise InsufficientScope(scopes)
        return True


class HasRole(BasePermission):
    """Every role in ``required_roles`` (of this class, or else of the view) must be in the token."""

    required_roles: tuple[str, ...] = ()
    message = "the token lacks a role this request needs"

    def has_permission(self, request: Request, view: Any) -> bool:
        claims = _claims(request)
        if claims is None:
            return False
        roles = self.required_roles or tuple(getattr(view, "required_roles", ()))
        if not roles:
            raise ImproperlyConfigured(f"{type(view).__name__}: HasRole needs required_roles")
        return claims.has_role(*roles)


def RequireScopes(*scopes: str) -> type[HasScope]:
    """A permission class requiring all of ``scopes``.

    ``permission_classes = [RequireScopes("orders.read")]``; it composes with ``&`` and ``|``.
    """
    if not scopes or not all(isinstance(scope, str) and SCOPE_TOKEN.fullmatch(scope) for scope in scopes):
        raise ValueError("RequireScopes needs one or more scope tokens")
    return type(f"RequireScopes{scopes!r}", (HasScope,), {"required_scopes": tuple(scopes)})


def RequireRoles(*roles: str) -> type[HasRole]:
    """A permission class requiring all of ``roles``.

    ``permission_classes = [RequireRoles("approver")]``.
    """
    if not roles or not all(isinstance(role, str) and role for role in roles):
        raise ValueError("RequireRoles needs one or more role names")
    return type(f"RequireRoles{roles!r}", (HasRole,), {"required_roles": tuple(roles)})
