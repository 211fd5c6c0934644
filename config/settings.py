"""Settings for the token issuer, read from the environment (see README "Configuration").

Every variable is read once here with a typed reader; a bad value raises ``ImproperlyConfigured``
naming the variable. ``DEBUG=false`` (the default) is production: it refuses to start without real
secrets, an issuer, an audience and the required Entra scopes or roles.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

from accounts.identity_provider import v1_issuer, v2_issuer
from accounts.provider_config import identity_providers_load
from lib.env import Env
from lib.guid import is_guid
from lib.jwa import SIGNING_ALGORITHMS

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR") or BASE_DIR / "var")

# An env file (KEY=value lines) may seed the environment; real variables win. `make run` points
# ENV_FILE at var/dev.env, which holds the development secrets it generated on the first run.
if os.environ.get("ENV_FILE"):
    environ.Env.read_env(os.environ["ENV_FILE"], overwrite=False)

env = Env()

DEBUG = env.bool("DEBUG", False)

# --- secrets -------------------------------------------------------------------------------
_DEV_SECRET_KEY = "django-insecure-development-only-never-use-in-production"
SECRET_KEY = env.str("SECRET_KEY") or (_DEV_SECRET_KEY if DEBUG else None)
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY: required when DEBUG=false")
if not DEBUG and (SECRET_KEY == _DEV_SECRET_KEY or len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5):
    raise ImproperlyConfigured("SECRET_KEY: use a random value of 50+ characters when DEBUG=false")

_DEV_KEY_ENCRYPTION_KEY = "development-only-key-encryption-key-not-secret"
KEY_ENCRYPTION_KEYS = env.list("KEY_ENCRYPTION_KEY") or ([_DEV_KEY_ENCRYPTION_KEY] if DEBUG else [])
if not KEY_ENCRYPTION_KEYS:
    raise ImproperlyConfigured("KEY_ENCRYPTION_KEY: required when DEBUG=false")
for _secret in KEY_ENCRYPTION_KEYS:
    if len(_secret) < 32:
        raise ImproperlyConfigured("KEY_ENCRYPTION_KEY: every secret must be 32+ characters")
    if not DEBUG and _secret == _DEV_KEY_ENCRYPTION_KEY:
        raise ImproperlyConfigured("KEY_ENCRYPTION_KEY: the development secret is refused when DEBUG=false")

# --- HTTP ----------------------------------------------------------------------------------
PORT = env.int("PORT", 8000, minimum=1, maximum=65535)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS: required when DEBUG=false")
if not DEBUG and "*" in ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS: '*' is refused when DEBUG=false")

HTTPS = env.bool("HTTPS", not DEBUG)
if HTTPS:
    # Behind a TLS-terminating proxy that sets X-Forwarded-Proto; never trust it on plain http.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SECURE_HSTS_SECONDS = 31_536_000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # Probes and the scraper reach the worker directly over plain http, not through the proxy.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
# The exchange endpoint takes at most a few kilobytes; bigger bodies are refused with 400.
DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024

# --- browser clients (CORS, django-cors-headers) -------------------------------------------
# Pages on these origins may read the answers of POST /oauth2/token, and nothing else of ours:
# the JWKS and the metadata are readable from any origin (lib.cors on their views), the portal
# from none. Never credentials: the exchange reads no cookie, and a browser sends none with it.
CORS_ALLOWED_ORIGINS = env.origins("CORS_ALLOWED_ORIGINS")
CORS_ALLOW_ALL_ORIGINS = "*" in CORS_ALLOWED_ORIGINS
if CORS_ALLOW_ALL_ORIGINS:
    if not DEBUG:
        raise ImproperlyConfigured("CORS_ALLOWED_ORIGINS: '*' is refused when DEBUG=false; list the origins")
    CORS_ALLOWED_ORIGINS = []
CORS_URLS_REGEX = r"^/oauth2/token$"
CORS_ALLOW_CREDENTIALS = False
CORS_ALLOW_METHODS = ["POST"]
# A JSON body's Content-Type needs the preflight; a form body is a simple request and needs none.
CORS_ALLOW_HEADERS = ["accept", "content-type"]
# A 429's Retry-After, for a page that backs off; Cache-Control and Pragma are readable anyway.
CORS_EXPOSE_HEADERS = ["Retry-After"]
# Chromium caps it at two hours. Taking an origin off the list still takes effect at once: the
# answer to the POST itself carries Access-Control-Allow-Origin only for listed origins.
CORS_PREFLIGHT_MAX_AGE = 7200

# --- the token we issue --------------------------------------------------------------------
TOKEN_ISSUER = env.url("TOKEN_ISSUER", f"http://127.0.0.1:{PORT}" if DEBUG else None)
if not TOKEN_ISSUER:
    raise ImproperlyConfigured("TOKEN_ISSUER: required when DEBUG=false (an https URL)")
if not DEBUG and not TOKEN_ISSUER.startswith("https://"):
    raise ImproperlyConfigured("TOKEN_ISSUER: must be an https URL when DEBUG=false")
TOKEN_LIFETIME_MAX = 900  # a retiring key stays published this long after its last token (keys)
TOKEN_LIFETIME = env.int("TOKEN_LIFETIME", 600, minimum=60, maximum=TOKEN_LIFETIME_MAX)
TOKEN_DEFAULT_AUDIENCE = env.str("TOKEN_DEFAULT_AUDIENCE")

# --- Entra ID ------------------------------------------------------------------------------
ENTRA_AUTHORITY = env.url("ENTRA_AUTHORITY", "https://login.microsoftonline.com")
ENTRA_TENANT_ID = [tid.lower() for tid in env.list("ENTRA_TENANT_ID")]
ENTRA_AUDIENCE = env.list("ENTRA_AUDIENCE")
ENTRA_REQUIRED_SCOPES = env.list("ENTRA_REQUIRED_SCOPES")
ENTRA_REQUIRED_ROLES = env.list("ENTRA_REQUIRED_ROLES")
# How long Entra's keys may verify tokens after their last successful fetch (by any worker: they
# are stored in the database) while Entra cannot be reached; Microsoft advises caching them 24 h.
ENTRA_KEYS_MAX_STALE = env.int("ENTRA_KEYS_MAX_STALE", 86_400, minimum=3600, maximum=7 * 86_400)
# v1 access tokens (issuer https://sts.windows.net/{tid}/) are refused unless enabled.
ENTRA_ALLOW_V1_TOKENS = env.bool("ENTRA_ALLOW_V1_TOKENS", False)
# A local development directory (`manage.py dev_token`) the validator trusts; never in production.
ENTRA_DEV_DIRECTORY = env.bool("ENTRA_DEV_DIRECTORY", False)
if ENTRA_DEV_DIRECTORY and not DEBUG:
    raise ImproperlyConfigured("ENTRA_DEV_DIRECTORY: refused when DEBUG=false (it trusts a local key)")

# --- identity providers beyond the ENTRA_* directories (README "Identity providers") ---------
# A JSON file declaring Entra External ID, Azure AD B2C, generic OpenID Connect (or more Entra)
# providers, each checked now (accounts/provider_config.py): a bad entry stops start-up, named.
IDENTITY_PROVIDERS_FILE = env.str("IDENTITY_PROVIDERS_FILE")
IDENTITY_PROVIDERS = identity_providers_load(
    IDENTITY_PROVIDERS_FILE,
    entra_tenant_ids=ENTRA_TENANT_ID,
    entra_issuers=[
        *(v2_issuer(ENTRA_AUTHORITY, tid) for tid in ENTRA_TENANT_ID),
        *(v1_issuer(tid) for tid in ENTRA_TENANT_ID if ENTRA_ALLOW_V1_TOKENS),
    ],
)
if not DEBUG:
    if not (ENTRA_TENANT_ID or IDENTITY_PROVIDERS):
        raise ImproperlyConfigured(
            "ENTRA_TENANT_ID: required when DEBUG=false, unless IDENTITY_PROVIDERS_FILE declares providers"
        )
    if ENTRA_TENANT_ID and not ENTRA_AUDIENCE:
        raise ImproperlyConfigured("ENTRA_AUDIENCE: required when DEBUG=false")
    if ENTRA_TENANT_ID and not (ENTRA_REQUIRED_SCOPES or ENTRA_REQUIRED_ROLES):
        raise ImproperlyConfigured(
            "ENTRA_REQUIRED_SCOPES or ENTRA_REQUIRED_ROLES: at least one is required when DEBUG=false"
        )

# --- group overage through Microsoft Graph (accounts/graph.py; README "Group overage") -------
# Past 200 groups Entra leaves `groups` out of the token; with GRAPH_OVERAGE on, the exchange asks
# Graph's checkMemberGroups about the groups its grants name. The app-only token comes from
# GRAPH_CLIENT_ID + GRAPH_CLIENT_SECRET, or from a managed identity when no secret is set
# (GRAPH_CLIENT_ID then names a user-assigned identity; unset, the system-assigned one).
GRAPH_OVERAGE = env.bool("GRAPH_OVERAGE", False)
GRAPH_ENDPOINT = env.url("GRAPH_ENDPOINT", "https://graph.microsoft.com")
GRAPH_AUTHORITY = env.url("GRAPH_AUTHORITY", "https://login.microsoftonline.com")
for _name, _url in (("GRAPH_ENDPOINT", GRAPH_ENDPOINT), ("GRAPH_AUTHORITY", GRAPH_AUTHORITY)):
    if urlsplit(_url).path:
        raise ImproperlyConfigured(f"{_name}: expected the host alone, without a path, got {_url!r}")
if not GRAPH_AUTHORITY.startswith("https://"):
    raise ImproperlyConfigured("GRAPH_AUTHORITY: must be an https URL (azure-identity refuses plain http)")
GRAPH_CLIENT_ID = env.str("GRAPH_CLIENT_ID")
GRAPH_CLIENT_SECRET = env.str("GRAPH_CLIENT_SECRET")
if GRAPH_CLIENT_ID is not None and not is_guid(GRAPH_CLIENT_ID):
    raise ImproperlyConfigured("GRAPH_CLIENT_ID: expected an application (client) id, a lower-case GUID")
if GRAPH_CLIENT_SECRET is not None and GRAPH_CLIENT_ID is None:
    raise ImproperlyConfigured("GRAPH_CLIENT_ID: required when GRAPH_CLIENT_SECRET is set")
GRAPH_CACHE_SECONDS = env.int("GRAPH_CACHE_SECONDS", 300, minimum=0, maximum=3600)

# --- the portal's sign-in (Entra ID through mozilla-django-oidc; see accounts/oidc.py) -------
# The portal signs admins in against one "home" directory: its endpoints and the ID token's issuer
# are derived from ENTRA_AUTHORITY and PORTAL_TENANT_ID (default: the first ENTRA_TENANT_ID).
OIDC_RP_CLIENT_ID = env.str("OIDC_RP_CLIENT_ID")
OIDC_RP_CLIENT_SECRET = env.str("OIDC_RP_CLIENT_SECRET")
PORTAL_OIDC = OIDC_RP_CLIENT_ID is not None
if PORTAL_OIDC and not OIDC_RP_CLIENT_SECRET:
    raise ImproperlyConfigured("OIDC_RP_CLIENT_SECRET: required when OIDC_RP_CLIENT_ID is set")
PORTAL_TENANT_ID = (env.str("PORTAL_TENANT_ID") or (ENTRA_TENANT_ID[0] if ENTRA_TENANT_ID else "")).lower()
if PORTAL_OIDC and not is_guid(PORTAL_TENANT_ID):
    raise ImproperlyConfigured(
        "PORTAL_TENANT_ID: the portal's home directory id (a GUID) is required when OIDC_RP_CLIENT_ID "
        "is set (it defaults to the first ENTRA_TENANT_ID)"
    )
# The Entra app role (in the ID token's `roles`) that makes a user a platform admin.
PORTAL_ADMIN_ROLE = env.str("PORTAL_ADMIN_ROLE", "Portal.Admin")
# The portal's name, in its header and its pages' titles.
PORTAL_TITLE = env.str("PORTAL_TITLE", "Token issuer")
# Search and smart paste match words by meaning with the bundled embedding model (wordllama), loaded
# on the first search; "lexical" matches by spelling only (no model in memory). README "Search".
PORTAL_SEARCH_MATCHING = env.choice("PORTAL_SEARCH_MATCHING", "model", ("model", "lexical"))
# Password sign-in: on for local use; off by default in production once Entra sign-in is configured.
PORTAL_PASSWORD_LOGIN = env.bool("PORTAL_PASSWORD_LOGIN", DEBUG or not PORTAL_OIDC)
if not (PORTAL_PASSWORD_LOGIN or PORTAL_OIDC):
    raise ImproperlyConfigured("PORTAL_PASSWORD_LOGIN: false needs OIDC_RP_CLIENT_ID, or nobody can sign in")
# A function `(*, user) -> bool` telling whether a user without the admin role may still use the
# portal (a tenant admin). accounts cannot import authz, so authz's answer is wired in here.
PORTAL_STAFF_CHECK: str | None = "authz.portal.tenant_administrator_exists"
_portal_directory = f"{ENTRA_AUTHORITY}/{PORTAL_TENANT_ID}"
OIDC_OP_AUTHORIZATION_ENDPOINT = f"{_portal_directory}/oauth2/v2.0/authorize"
OIDC_OP_TOKEN_ENDPOINT = f"{_portal_directory}/oauth2/v2.0/token"
OIDC_OP_JWKS_ENDPOINT = f"{_portal_directory}/discovery/v2.0/keys"
OIDC_OP_LOGOUT_ENDPOINT = f"{_portal_directory}/oauth2/v2.0/logout"
# Required by the library; never called: every claim we use comes from the verified ID token.
OIDC_OP_USER_ENDPOINT = "https://graph.microsoft.com/oidc/userinfo"
OIDC_OP_LOGOUT_URL_METHOD = "accounts.oidc.provider_logout_url"
OIDC_RP_SIGN_ALGO = "RS256"
OIDC_RP_SCOPES = "openid profile"
OIDC_USE_PKCE = True
OIDC_USE_NONCE = True
OIDC_TIMEOUT = 5
LOGIN_REDIRECT_URL = "/admin/"
LOGIN_REDIRECT_URL_FAILURE = "/admin/login/?sign_in=failed"
LOGOUT_REDIRECT_URL = "/admin/login/"
# Sessions end this long after sign-in, however active (accounts/portal_sessions.py); an Entra
# session's rights are re-checked with Entra (prompt=none) every OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS.
PORTAL_SESSION_MAX_AGE = env.int("PORTAL_SESSION_MAX_AGE", 8 * 3600, minimum=300, maximum=7 * 86_400)
SESSION_COOKIE_AGE = PORTAL_SESSION_MAX_AGE
OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS = env.int(
    "OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS",
    min(900, PORTAL_SESSION_MAX_AGE),
    minimum=60,
    maximum=PORTAL_SESSION_MAX_AGE,
)
OIDC_CALLBACK_CLASS = "accounts.portal_sessions.EntraCallbackView"
# Renewal concerns the portal only: never the exchange or the public documents, whatever cookie.
OIDC_EXEMPT_URLS = ["portal-logout", re.compile(r"^/(?!admin/)")]
AUTHENTICATION_BACKENDS = [
    *(["accounts.oidc.EntraBackend"] if PORTAL_OIDC else []),
    *(["django.contrib.auth.backends.ModelBackend"] if PORTAL_PASSWORD_LOGIN else []),
]

# --- signing keys --------------------------------------------------------------------------
KEY_ALGORITHM = env.choice("KEY_ALGORITHM", "ES256", tuple(SIGNING_ALGORITHMS))
KEY_STORE = env.choice("KEY_STORE", "local", ("local", "azure-keyvault"))
JWKS_MAX_AGE = env.int("JWKS_MAX_AGE", 900, minimum=0, maximum=86_400)
KEY_PUBLISH_LEAD = env.int("KEY_PUBLISH_LEAD", 86_400, minimum=1)
KEY_ROTATION_INTERVAL = env.int("KEY_ROTATION_INTERVAL", 30 * 86_400, minimum=60)
KEY_ROTATION_CHECK_INTERVAL = env.int("KEY_ROTATION_CHECK_INTERVAL", 300, minimum=1)
if KEY_PUBLISH_LEAD < JWKS_MAX_AGE:
    raise ImproperlyConfigured(
        f"KEY_PUBLISH_LEAD: must be at least JWKS_MAX_AGE ({JWKS_MAX_AGE}), got {KEY_PUBLISH_LEAD}; "
        "a verifier could otherwise meet a token signed by a key its cached JWKS does not have"
    )
if KEY_PUBLISH_LEAD >= KEY_ROTATION_INTERVAL:
    raise ImproperlyConfigured(
        f"KEY_PUBLISH_LEAD: must be shorter than KEY_ROTATION_INTERVAL ({KEY_ROTATION_INTERVAL})"
    )
JWKS_PUBLISH_PATH = env.str("JWKS_PUBLISH_PATH")
# Azure Key Vault (keys/vault.py): KEY_STORE=azure-keyvault signs inside the vault; with
# KEY_STORE=local, KEY_VAULT_WRAP_KEY seals the local keys under data keys only the vault unwraps.
# Credentials come from azure-identity's DefaultAzureCredential (managed identity, workload identity,
# or a service principal from AZURE_* variables): no secret of ours.
KEY_VAULT_URL = env.url("KEY_VAULT_URL")
KEY_VAULT_KEY_NAME = env.str("KEY_VAULT_KEY_NAME", "token-signing")
KEY_VAULT_WRAP_KEY = env.str("KEY_VAULT_WRAP_KEY")
# false only for a vault host outside *.vault.azure.net (a sovereign cloud, a test fake).
KEY_VAULT_VERIFY_CHALLENGE_RESOURCE = env.bool("KEY_VAULT_VERIFY_CHALLENGE_RESOURCE", True)
KEY_VAULT_REQUIRE_PRIVATE_ENDPOINT = env.bool("KEY_VAULT_REQUIRE_PRIVATE_ENDPOINT", False)
if (KEY_STORE == "azure-keyvault" or KEY_VAULT_WRAP_KEY) and not KEY_VAULT_URL:
    raise ImproperlyConfigured(
        "KEY_VAULT_URL: required by KEY_STORE=azure-keyvault and KEY_VAULT_WRAP_KEY (https://NAME.vault.azure.net/)"
    )
if KEY_VAULT_URL and not KEY_VAULT_URL.startswith("https://"):
    raise ImproperlyConfigured(f"KEY_VAULT_URL: the vault is reached over https only, got {KEY_VAULT_URL!r}")

# --- apps ----------------------------------------------------------------------------------
INSTALLED_APPS = [
    # Django's admin on the portal's own site: its name and navigation (config/portal.py).
    "config.portal.PortalAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "drf_spectacular",
    "django_celery_beat",
    "simple_history",
    "accounts",
    "keys",
    "authz",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Outside everything that may answer, so every answer gets a policy (config/csp.py).
    "config.csp.ContentSecurityPolicyMiddleware",
    # Before anything that may answer: a preflight is answered here, and every answer of the
    # token endpoint (errors included) gets its CORS headers.
    "corsheaders.middleware.CorsMiddleware",
    # The portal's sessions, users, messages and history: the stateless endpoints (the exchange,
    # the JWKS, the probes) skip them (config/middleware.py).
    "config.middleware.PortalSessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "config.middleware.PortalAuthenticationMiddleware",
    "config.middleware.PortalEntraSessionRefresh",
    "config.middleware.PortalMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.middleware.portal_history_middleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # Overrides of third-party templates (config/templates), before the apps' own.
        "DIRS": [BASE_DIR / "config" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- storage -------------------------------------------------------------------------------
_database_url = env.str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
try:
    DATABASES = {"default": environ.Env.db_url_config(_database_url)}
except Exception as exc:  # django-environ raises several types for a malformed URL
    raise ImproperlyConfigured(f"DATABASE_URL: cannot parse it ({exc.__class__.__name__})") from None
if DATABASES["default"].get("ENGINE") not in (
    "django.db.backends.postgresql",
    "django.db.backends.sqlite3",
):
    raise ImproperlyConfigured("DATABASE_URL: expected a postgres:// or sqlite:/// URL")
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("CONN_MAX_AGE", 60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
    if env.bool("DATABASE_PREPARED_STATEMENTS", True):
        # Server-side binding lets psycopg prepare a statement after a few runs on a connection:
        # the exchange's one query then skips planning (0.8 ms -> 0.3 ms). Turn it off behind a
        # pooler that cannot keep prepared statements (PgBouncer in transaction mode before 1.21).
        DATABASES["default"]["OPTIONS"].update({"server_side_binding": True, "prepare_threshold": 5})
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let the web server, worker and beat share the file.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"}
    )

# The exchange's policy snapshots, per process, invalidated by PostgreSQL's LISTEN/NOTIFY
# (authz/snapshot_cache.py); always off on SQLite, which cannot notify.
POLICY_CACHE = env.bool("POLICY_CACHE", True)
POLICY_CACHE_ENTRIES = env.int("POLICY_CACHE_ENTRIES", 10_000, minimum=1, maximum=1_000_000)

_cache_url = env.str("CACHE_URL", "locmemcache://")
try:
    CACHES = {"default": environ.Env.cache_url_config(_cache_url)}
except Exception as exc:
    raise ImproperlyConfigured(f"CACHE_URL: cannot parse it ({exc.__class__.__name__})") from None
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
    # Redis down must degrade (no throttling, JWKS from the database), never fail requests.
    CACHES["default"]["BACKEND"] = "lib.cache.ResilientRedisCache"
    CACHES["default"].setdefault("OPTIONS", {}).update({"socket_connect_timeout": 0.5, "socket_timeout": 0.5})
# The JWKS entry: one bytes value with a MAC, stored and read as bytes, never pickled, so that
# whoever can write to the cache can neither publish a key nor have this process unpickle a payload.
CACHES["jwks"] = {**CACHES["default"], "OPTIONS": dict(CACHES["default"].get("OPTIONS", {}))}
if CACHES["jwks"]["BACKEND"] == "lib.cache.ResilientRedisCache":
    CACHES["jwks"]["OPTIONS"]["serializer"] = "keys.cache.BytesSerializer"

# --- Celery --------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", "filesystem://")
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        # Exchange bindings (broadcast, worker remote control); kombu's default is ./control.
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }

# --- auth, i18n, static --------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "config" / "static"]
STATIC_ROOT = VAR_DIR / "static"

# --- DRF -----------------------------------------------------------------------------------
REST_FRAMEWORK: dict[str, object] = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
    # Client addresses come from REMOTE_ADDR unless NUM_PROXIES trusted proxies add X-Forwarded-For.
    "NUM_PROXIES": env.int("NUM_PROXIES", 0, minimum=0, maximum=10),
    "DEFAULT_THROTTLE_RATES": {
        "exchange_address": env.rate("THROTTLE_ADDRESS_RATE", "1200/minute"),
        "exchange_principal": env.rate("THROTTLE_PRINCIPAL_RATE", "120/minute"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Authorization token issuer",
    "DESCRIPTION": "Exchanges a Microsoft Entra ID access token for a short-lived token of ours "
    "(RFC 8693), carrying what the caller may do in one tenant.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The JWKS, metadata and probes are plain Django views: config/schema.py documents them.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.schema.plain_views_add",
    ],
}

# --- metrics -------------------------------------------------------------------------------
# /metrics answers only direct requests from these addresses/networks (404 otherwise) and, when
# METRICS_TOKEN is set, only with it as a bearer token (403 otherwise).
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", ["127.0.0.1", "::1"])
try:
    METRICS_ALLOWED_NETWORKS = [ipaddress.ip_network(item, strict=False) for item in METRICS_ALLOWED_IPS]
except ValueError:
    raise ImproperlyConfigured(
        "METRICS_ALLOWED_IPS: expected a comma list of IP addresses or CIDR networks"
    ) from None
METRICS_TOKEN = env.str("METRICS_TOKEN")
if METRICS_TOKEN is not None and len(METRICS_TOKEN) < 32:
    raise ImproperlyConfigured("METRICS_TOKEN: use a random value of 32+ characters")

# --- logging -------------------------------------------------------------------------------
# One JSON object per line in production (the decision log nested as an object); plain in DEBUG.
LOG_FORMAT = env.choice("LOG_FORMAT", "plain" if DEBUG else "json", ("json", "plain"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "lib.logformat.JsonFormatter"},
    },
    "filters": {"warning_without_traceback": {"()": "lib.logfilters.WarningWithoutTraceback"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's defaults give "django" a console handler of its own in DEBUG: each record of
        # django.request ("Bad Request: /oauth2/token") was printed there and again by root.
        "django": {"handlers": [], "propagate": True},
        # Anyone can send a bad Host header: one line at WARNING, not an ERROR with a traceback.
        "django.security.DisallowedHost": {"filters": ["warning_without_traceback"]},
        # azure-identity logs every Graph token request at INFO; its failures are WARNINGs.
        "azure": {"level": "WARNING"},
    },
}
