"""Fixtures of every test directory: real services when the run has them, fakes, a frozen clock, the exchange.

Real services missing from the run give a clear skip (or, in CI, a failure): see
tests/support/missing_services.py.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import datetime
from urllib.parse import urlencode

import pytest
from django.core.cache import cache
from django.db import connection

from tests.support.clock import FrozenClock
from tests.support.exchange import OrdersPolicy
from tests.support.missing_services import skip_or_fail


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
    """Each test starts without a signer, JWKS, principal id or policy snapshot cached by an earlier test.

    A listening connection started by a test is closed too: it would keep the test database from
    being dropped at the end of the run.
    """
    from accounts.services import principal_id_cache, principal_seen_memo
    from keys.services import key_caches_clear
    from tests.support.table_changes import listener_reset

    def clear() -> None:
        key_caches_clear()
        principal_id_cache.clear()
        principal_seen_memo.clear()
        listener_reset()

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
def fake_entra(fake_entra_server, settings, db):
    """The fake Entra, healthy and reset, with settings pointing at it, an empty JWKS cache and no
    stored keys (the cache writes every fetch to the database)."""
    from accounts.entra import jwks_cache
    from accounts.models import ProviderKeySet
    from tests import fake_entra as entra

    fake_entra_server.reset()
    ProviderKeySet.objects.all().delete()  # rows a background refresh committed in an earlier test
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
def fake_graph_server():
    """One fake Microsoft Graph and token endpoint on loopback over https (see tests/fake_graph.py)."""
    from tests.fake_graph import FakeGraph

    server = FakeGraph().start()
    yield server
    server.close()


@pytest.fixture
def fake_graph(fake_graph_server, settings, monkeypatch):
    """The fake Graph, healthy and reset, with GRAPH_OVERAGE on against it and nothing cached.

    Its certificate is trusted through REQUESTS_CA_BUNDLE, which azure-identity and requests honour.
    """
    from accounts.graph import graph_client
    from tests import fake_graph as graph

    fake_graph_server.reset()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", fake_graph_server.ca_file)
    settings.GRAPH_OVERAGE = True
    settings.GRAPH_ENDPOINT = fake_graph_server.url
    settings.GRAPH_AUTHORITY = fake_graph_server.url
    settings.GRAPH_CLIENT_ID = graph.CLIENT_ID
    settings.GRAPH_CLIENT_SECRET = graph.CLIENT_SECRET
    settings.GRAPH_CACHE_SECONDS = 300
    graph_client.clear()
    cache.clear()
    yield fake_graph_server
    graph_client.clear()
    cache.clear()
    fake_graph_server.reset()


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


@pytest.fixture
def freeze_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[..., FrozenClock]:
    """``freeze_clock(*readers, at=start)``: each reader's ``clock`` is one FrozenClock for this test.

    A reader is whatever names its clock in a ``clock`` attribute: a class, an object or a module
    (see tests/support/clock.py). Returns the clock, which the test moves with ``advance``.
    """

    def freeze(*readers: object, at: datetime | float) -> FrozenClock:
        clock = FrozenClock(at)
        for reader in readers:
            monkeypatch.setattr(reader, "clock", clock)
        return clock

    return freeze


@pytest.fixture
def signing_key(db) -> Iterator[None]:
    """An active signing key, created as the first rotation does."""
    from keys.services import key_caches_clear, signing_key_rotate

    key_caches_clear()
    signing_key_rotate()
    yield
    key_caches_clear()


@pytest.fixture
def orders_policy(db) -> OrdersPolicy:
    """DESIGN.md's shape: orders permissions, an exports feature, two tenants, two global roles."""
    from authz.models import Audience, Permission, Role, Tenant

    read = Permission.objects.create(code="orders.read")
    write = Permission.objects.create(code="orders.write")
    export = Permission.objects.create(code="orders.export", requires_feature="exports")
    billing = Permission.objects.create(code="billing.read")
    orders = Audience.objects.create(identifier="api://orders", name="Orders API")
    orders.permissions.set([read, write, export])
    Audience.objects.create(identifier="api://billing", name="Billing API").permissions.set([billing])
    Audience.objects.create(identifier="api://empty", name="Registers nothing")
    viewer = Role.objects.create(slug="viewer", name="Viewer")
    viewer.permissions.set([read, billing])
    editor = Role.objects.create(slug="editor", name="Editor")
    editor.permissions.set([read, write, export])
    acme = Tenant.objects.create(slug="acme", name="Acme", features=["exports"])
    globex = Tenant.objects.create(slug="globex", name="Globex")
    return OrdersPolicy(acme=acme, globex=globex, viewer=viewer, editor=editor, orders=orders)


@pytest.fixture
def exchange(client, fake_entra, signing_key, monkeypatch):
    """POST a token exchange through the whole Django stack; keyword fields override the defaults."""
    from authz.rfc8693 import ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE
    from authz.throttling import AddressRateThrottle, PrincipalRateThrottle

    cache.clear()
    # Generous limits unless a test tightens them (class-attribute seams, read per request).
    monkeypatch.setattr(
        AddressRateThrottle, "THROTTLE_RATES", {"exchange_address": "10000/minute"}, raising=False
    )
    monkeypatch.setattr(
        PrincipalRateThrottle, "THROTTLE_RATES", {"exchange_principal": "10000/minute"}, raising=False
    )

    def post(
        token: str | None = None, *, json: bool = False, HTTP_ACCEPT: str = "application/json", **fields
    ):
        data = {
            "grant_type": TOKEN_EXCHANGE,
            "subject_token": token if token is not None else fake_entra.mint(),
            "subject_token_type": ACCESS_TOKEN_TYPE,
            "audience": "api://orders",
        }
        data.update(fields)
        data = {name: value for name, value in data.items() if value is not None}
        if json:
            return client.post(
                "/oauth2/token", data, content_type="application/json", HTTP_ACCEPT=HTTP_ACCEPT
            )
        form = urlencode(data)
        return client.post(
            "/oauth2/token", form, content_type="application/x-www-form-urlencoded", HTTP_ACCEPT=HTTP_ACCEPT
        )

    yield post
    cache.clear()
