"""The import planner: references, role rules and the feature catalogue, checked without a database."""

from __future__ import annotations

import pytest

from authz.engine import features_undeclared, role_applies_in, role_slug_clash
from authz.policy.document import ErrorList, PolicyError
from authz.policy.parsing import document_parse
from authz.policy.planner import StoredPolicy, policy_plan

USER_ID = "2f0e3b4c-8a1d-4c5e-9f60-7b8c9d0e1f2a"
# One trusted identity provider: the grants here may leave it out.
PROVIDERS = ("11111111-1111-4111-8111-111111111111",)


def plan_errors(document: dict, stored: StoredPolicy | None = None) -> list[str]:
    errors = ErrorList()
    parsed = document_parse(document, errors, None, providers=PROVIDERS)
    policy_plan(parsed, stored or StoredPolicy(), False, errors)
    try:
        errors.raise_if_any()
    except PolicyError as exc:
        return exc.errors
    return []


def permission(code: str, feature: str | None = None) -> dict:
    return {"code": code, "requires_feature": feature}


def tenant(slug: str, *features: str) -> dict:
    return {"slug": slug, "name": slug.title(), "features": list(features)}


def test_a_global_role_applies_in_every_tenant_and_a_tenants_own_only_there():
    assert role_applies_in(role_tenant=None, tenant="acme")
    assert role_applies_in(role_tenant="acme", tenant="acme")
    assert not role_applies_in(role_tenant="acme", tenant="globex")


def test_a_role_slug_may_not_name_a_global_and_a_tenants_role_at_once():
    assert role_slug_clash(owner=None, other_owners=[]) is None
    assert role_slug_clash(owner="acme", other_owners=["globex"]) is None
    assert role_slug_clash(owner="acme", other_owners=[None]).with_global
    assert role_slug_clash(owner=None, other_owners=[None]).with_global
    assert role_slug_clash(owner=None, other_owners=["globex", "acme"]).tenants == ("acme", "globex")


def test_features_are_checked_only_once_a_catalogue_exists():
    assert features_undeclared(features=["exprots"], declared=[]) == ()
    assert features_undeclared(features=["exprots", "exports"], declared=["exports"]) == ("exprots",)


def test_it_refuses_a_tenant_feature_missing_from_the_catalogue_and_suggests_the_near_one():
    document = {"features": [{"code": "exports"}], "tenants": [tenant("acme", "exprots")]}

    assert plan_errors(document) == [
        "tenants[0]: feature 'exprots' is not in the feature catalogue; did you mean 'exports'?"
    ]


def test_it_refuses_a_required_feature_missing_from_a_stored_catalogue():
    stored = StoredPolicy(features={"exports": ""})

    errors = plan_errors({"permissions": [permission("orders.export", "sso")]}, stored)

    assert errors == [
        "permissions[0]: feature 'sso' is not in the feature catalogue; declare it under 'features'"
    ]


def test_features_declared_in_the_file_or_stored_are_accepted():
    stored = StoredPolicy(features={"sso": ""})
    document = {
        "features": [{"code": "exports"}],
        "permissions": [permission("orders.export", "exports")],
        "tenants": [tenant("acme", "exports", "sso")],
    }

    assert plan_errors(document, stored) == []


def test_without_any_catalogue_features_are_free_labels():
    # Policies written before the catalogue existed (DESIGN.md's example among them) still import.
    document = {"permissions": [permission("orders.export", "exports")], "tenants": [tenant("acme", "sso")]}

    assert plan_errors(document) == []


def test_it_refuses_a_grant_of_a_role_owned_by_another_tenant():
    stored = StoredPolicy(
        tenants={"acme": ("Acme", "active", ()), "globex": ("Globex", "active", ())},
        roles={("acme", "auditor"): ("Auditor", frozenset())},
    )
    document = {"grants": [{"tenant": "globex", "role": "auditor", "user": USER_ID}]}

    assert plan_errors(document, stored) == [
        "grants[0]: role 'auditor' belongs to tenant 'acme', not to 'globex'"
    ]


@pytest.mark.parametrize(
    ("stored_role", "new_role", "message"),
    [
        (
            (None, "viewer"),
            {"slug": "viewer", "name": "V", "tenant": "acme"},
            "roles[0]: role 'viewer' clashes with the global role of that slug",
        ),
        (
            ("acme", "viewer"),
            {"slug": "viewer", "name": "V", "tenant": None},
            "roles[0]: global role 'viewer' clashes with the role 'viewer' of tenant 'acme'",
        ),
    ],
)
def test_it_refuses_a_role_slug_that_clashes_with_a_stored_role(stored_role, new_role, message):
    stored = StoredPolicy(
        tenants={"acme": ("Acme", "active", ())}, roles={stored_role: ("Viewer", frozenset())}
    )

    assert plan_errors({"roles": [new_role]}, stored) == [message]
