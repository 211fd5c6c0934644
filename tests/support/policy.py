"""Policy documents and small checks shared by the policy tests."""

from __future__ import annotations

import pytest

from authz.models import Audience, Feature, Grant, Permission, Role, Tenant
from authz.policy import PolicyError, policy_import
from tests import fake_entra as entra

USER_ID = "2f0e3b4c-8a1d-4c5e-9f60-7b8c9d0e1f2a"
GROUP_ID = "7d4c1a2b-3e5f-4a6b-8c7d-9e0f1a2b3c4d"
OTHER_USER = "0b6f9a52-3c1e-4d7a-b2f8-5e9c0d1a2b3c"
# The identity provider the documents' grants name: the fake Entra's first directory. The policy
# tests trust its two directories (tests/authz/conftest.py), so a grant must say which.
PROVIDER = entra.TENANT_ID


def design_example() -> dict:
    """DESIGN.md's example policy, with real GUIDs for the Entra ids."""
    return {
        "permissions": [{"code": "orders.read", "description": "Read orders", "requires_feature": None}],
        "audiences": [{"id": "api://orders", "name": "Orders API", "permissions": ["orders.read"]}],
        "roles": [{"slug": "viewer", "name": "Viewer", "permissions": ["orders.read"], "tenant": None}],
        "tenants": [{"slug": "acme", "name": "Acme", "status": "active", "features": ["exports"]}],
        "grants": [
            {
                "tenant": "acme",
                "role": "viewer",
                "provider": PROVIDER,
                "user": USER_ID,
                "valid_from": None,
                "valid_until": "2027-01-01T00:00:00Z",
            },
            {"tenant": "acme", "role": "viewer", "provider": PROVIDER, "group": GROUP_ID},
        ],
    }


def canonical() -> dict:
    """A file written exactly as export_policy writes it: every key, sorted lists, UTC with Z."""
    return {
        "features": [
            {"code": "exports", "description": "Order exports"},
            {"code": "sso", "description": ""},
        ],
        "permissions": [
            {"code": "orders.export", "description": "Export orders", "requires_feature": "exports"},
            {"code": "orders.read", "description": "Read orders", "requires_feature": None},
            {"code": "orders.write", "description": "", "requires_feature": None},
        ],
        "audiences": [
            {"id": "api://orders", "name": "Orders API", "permissions": ["orders.read", "orders.write"]},
        ],
        "roles": [
            {
                "slug": "editor",
                "name": "Editor",
                "permissions": ["orders.read", "orders.write"],
                "tenant": None,
            },
            {"slug": "viewer", "name": "Viewer", "permissions": ["orders.read"], "tenant": None},
            {"slug": "auditor", "name": "Auditor", "permissions": ["orders.export"], "tenant": "acme"},
        ],
        "tenants": [
            {"slug": "acme", "name": "Acme", "status": "active", "features": ["exports", "sso"]},
            {"slug": "globex", "name": "Globex", "status": "suspended", "features": []},
        ],
        "grants": [
            {
                "tenant": "acme",
                "role": "auditor",
                "provider": PROVIDER,
                "user": OTHER_USER,
                "valid_from": None,
                "valid_until": None,
            },
            {
                "tenant": "acme",
                "role": "viewer",
                "provider": PROVIDER,
                "group": GROUP_ID,
                "valid_from": "2026-01-01T08:30:00Z",
                "valid_until": None,
            },
            {
                "tenant": "acme",
                "role": "viewer",
                "provider": PROVIDER,
                "user": USER_ID,
                "valid_from": None,
                "valid_until": "2027-01-01T00:00:00.250000Z",
            },
            {
                "tenant": "globex",
                "role": "editor",
                "provider": PROVIDER,
                "user": USER_ID,
                "valid_from": None,
                "valid_until": None,
            },
        ],
    }


def counts(report) -> dict[str, tuple[int, int, int, int]]:
    return {kind: (c.created, c.updated, c.deleted, c.unchanged) for kind, c in report.counts.items()}


def errors_of(document: object, **options) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        policy_import(document=document, **options)
    return caught.value.errors


def nothing_stored() -> bool:
    return not any(m.objects.exists() for m in (Feature, Permission, Audience, Role, Tenant, Grant))
