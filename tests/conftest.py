"""Shared fixtures: real services when the run has them, a clear skip (or, in CI, a failure) when not."""

from __future__ import annotations

import os

import pytest
from django.db import connection

REQUIRE_SERVICES = os.environ.get("TEST_REQUIRE_SERVICES", "").lower() in {"1", "true", "yes"}


def skip_or_fail(reason: str) -> None:
    """Skip a test that needs a missing service; CI sets TEST_REQUIRE_SERVICES so it fails instead."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (TEST_REQUIRE_SERVICES is set)")
    pytest.skip(reason)


@pytest.fixture
def require_postgres() -> None:
    if connection.vendor != "postgresql":
        skip_or_fail("needs PostgreSQL: set DATABASE_URL=postgres://… to run it")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A Redis database for tests (TEST_REDIS_URL, default 127.0.0.1:6379/14), skipped if absent."""
    import redis

    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError:
        skip_or_fail(f"needs Redis at {url}")
    return url


@pytest.fixture(autouse=True)
def _fresh_process_caches():
    """Each test starts without a signer, JWKS or principal id cached by an earlier test's rows."""
    from accounts.services import principal_id_cache, principal_seen_memo
    from keys.services import key_caches_clear

    def clear() -> None:
        key_caches_clear()
        principal_id_cache.clear()
        principal_seen_memo.clear()

    clear()
    yield
    clear()


@pytest.fixture(scope="session")
def fake_entra_server():
    """One fake Entra ID on loopback for the whole run (see tests/fake_entra.py)."""
    from tests.fake_entra import FakeEntra

    server = FakeEntra().start()
    yield server
    server.close()


@pytest.fixture
def fake_entra(fake_entra_server, settings):
    """The fake Entra, healthy and reset, with settings pointing at it and an empty JWKS cache."""
    from accounts.entra import jwks_cache
    from tests import fake_entra as entra

    fake_entra_server.reset()
    settings.ENTRA_AUTHORITY = fake_entra_server.authority
    settings.ENTRA_TENANT_ID = [entra.TENANT_ID, entra.SECOND_TENANT_ID]
    settings.ENTRA_AUDIENCE = [entra.AUDIENCE, entra.AUDIENCE_ID]
    settings.ENTRA_REQUIRED_SCOPES = [entra.SCOPE]
    settings.ENTRA_REQUIRED_ROLES = [entra.ROLE]
    settings.ENTRA_ALLOW_V1_TOKENS = False
    settings.ENTRA_DEV_DIRECTORY = False
    jwks_cache.clear()
    yield fake_entra_server
    jwks_cache.clear()


@pytest.fixture(scope="session")
def fake_oidc_server():
    """One fake Entra OpenID provider for the portal's sign-in (see tests/fake_oidc.py)."""
    from tests.fake_oidc import FakeOidcProvider

    server = FakeOidcProvider().start()
    yield server
    server.close()


@pytest.fixture
def fake_oidc(fake_oidc_server, settings):
    """The fake provider, reset, with the portal's Entra sign-in configured against it."""
    from accounts.entra import jwks_cache
    from tests import fake_oidc as oidc

    fake_oidc_server.reset()
    settings.ENTRA_AUTHORITY = fake_oidc_server.authority
    settings.PORTAL_TENANT_ID = oidc.HOME_TID
    settings.PORTAL_ADMIN_ROLE = oidc.ADMIN_ROLE
    settings.PORTAL_PASSWORD_LOGIN = True
    settings.OIDC_RP_CLIENT_ID = oidc.CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = oidc.CLIENT_SECRET
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = fake_oidc_server.endpoint("authorize")
    settings.OIDC_OP_TOKEN_ENDPOINT = fake_oidc_server.endpoint("token")
    settings.OIDC_OP_JWKS_ENDPOINT = fake_oidc_server.endpoint("keys")
    settings.OIDC_OP_LOGOUT_ENDPOINT = fake_oidc_server.endpoint("logout")
    settings.AUTHENTICATION_BACKENDS = [
        "accounts.oidc.EntraBackend",
        "django.contrib.auth.backends.ModelBackend",
    ]
    jwks_cache.clear()
    yield fake_oidc_server
    jwks_cache.clear()
