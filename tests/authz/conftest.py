"""Fixtures for the exchange: a signing key, a small policy and a token-exchange client."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.core.cache import cache
from django.utils import timezone

from authz.models import Audience, Grant, Permission, Role, Tenant
from authz.requests import ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE
from authz.throttling import AddressRateThrottle, PrincipalRateThrottle
from keys.services import key_caches_clear, signing_key_rotate
from tests import fake_entra as entra

GROUP = "66666666-6666-4666-8666-666666666666"
OTHER_OID = "77777777-7777-4777-8777-777777777777"


@dataclass
class Policy:
    acme: Tenant
    globex: Tenant
    viewer: Role
    editor: Role
    orders: Audience

    def grant(
        self, role: Role, tenant: Tenant, *, subject: str = entra.OID, kind: str = "user", **kw
    ) -> Grant:
        return Grant.objects.create(tenant=tenant, role=role, subject_type=kind, subject_id=subject, **kw)


@pytest.fixture
def signing_key(db):
    key_caches_clear()
    signing_key_rotate()
    yield
    key_caches_clear()


@pytest.fixture
def policy(db) -> Policy:
    """DESIGN.md's shape: orders permissions, an exports feature, two tenants, two global roles."""
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
    return Policy(acme=acme, globex=globex, viewer=viewer, editor=editor, orders=orders)


@pytest.fixture
def exchange(client, fake_entra, signing_key, monkeypatch):
    """POST a token exchange through the whole Django stack; keyword fields override the defaults."""
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


def days(n: int) -> timezone.datetime:
    return timezone.now() + timedelta(days=n)
