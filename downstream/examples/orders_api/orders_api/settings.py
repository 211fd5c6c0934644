"""Settings of the orders example, from the environment: a stateless API that trusts one issuer.

TOKEN_ISSUER          the issuer we trust (its tokens' ``iss``), e.g. https://issuer.example.com
TOKEN_AUDIENCE        our audience as registered at the issuer (default api://orders)
JWKS_MIN_CACHE_AGE    bounds on how long the issuer's keys are kept before revalidation
JWKS_MAX_CACHE_AGE      (default 60 and 3600 s; within them the issuer's max-age decides)
ORDERS_DATABASE       the SQLite file (default orders.sqlite3 beside manage.py)
ALLOWED_HOSTS         comma list (default 127.0.0.1,localhost)
DEBUG                 true for development (default false)
"""

import os
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def _required(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise ImproperlyConfigured(f"{name}: required (see orders_api/settings.py)")
    return value


def _seconds(name: str, default: int) -> int:
    value = os.environ.get(name, str(default))
    if not value.isdigit():
        raise ImproperlyConfigured(f"{name}: a whole number of seconds, got {value!r}")
    return int(value)


DEBUG = os.environ.get("DEBUG", "false").lower() == "true"
# Nothing here is signed: no sessions, no cookies, no CSRF. A per-process key satisfies Django.
SECRET_KEY = os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50)
ALLOWED_HOSTS = [host.strip() for host in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")]

INSTALLED_APPS = ["rest_framework", "orders_api"]
MIDDLEWARE = ["django.middleware.security.SecurityMiddleware", "django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "orders_api.urls"
WSGI_APPLICATION = "orders_api.wsgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("ORDERS_DATABASE", str(BASE_DIR / "orders.sqlite3")),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"

# The trust: one issuer, our audience. Everything else (JWKS discovery, caching, rotation,
# revocation) the kit does; see downstream/README.md.
ISSUER_VERIFY = {
    "ISSUER": _required("TOKEN_ISSUER"),
    "AUDIENCE": os.environ.get("TOKEN_AUDIENCE", "api://orders"),
    "REALM": "orders",
    "MIN_CACHE_AGE": _seconds("JWKS_MIN_CACHE_AGE", 60),
    "MAX_CACHE_AGE": _seconds("JWKS_MAX_CACHE_AGE", 3600),
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["issuer_verify.django.IssuerTokenAuthentication"],
    # Closed by default: a view that names no required_scopes is a configuration error, not open.
    "DEFAULT_PERMISSION_CLASSES": ["issuer_verify.django.HasScope"],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
