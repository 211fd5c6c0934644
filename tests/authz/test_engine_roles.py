"""The role and feature rules of the engine: where a role applies, which slugs clash, undeclared features."""

from __future__ import annotations

from authz.engine import RoleSlugClash, features_undeclared, role_applies_in, role_slug_clash


def test_a_global_role_applies_in_every_tenant_and_a_tenant_s_own_role_only_in_it():
    assert role_applies_in(role_tenant=None, tenant="acme")
    assert role_applies_in(role_tenant="acme", tenant="acme")
    assert not role_applies_in(role_tenant="globex", tenant="acme")


def test_any_role_clashes_with_a_global_role_of_its_slug():
    assert role_slug_clash(owner="acme", other_owners=[None]) == RoleSlugClash(with_global=True)
    assert role_slug_clash(owner=None, other_owners=["acme", None]) == RoleSlugClash(with_global=True)


def test_a_global_role_clashes_with_the_tenants_that_own_a_role_of_its_slug_named_in_order():
    clash = role_slug_clash(owner=None, other_owners=["globex", "acme", "globex"])

    assert clash == RoleSlugClash(with_global=False, tenants=("acme", "globex"))


def test_tenants_own_roles_may_share_a_slug_and_a_slug_of_its_own_clashes_with_nothing():
    assert role_slug_clash(owner="acme", other_owners=["globex"]) is None
    assert role_slug_clash(owner="acme", other_owners=[]) is None
    assert role_slug_clash(owner=None, other_owners=[]) is None


def test_features_missing_from_the_catalogue_are_named_in_their_order():
    undeclared = features_undeclared(features=["exprots", "export", "audit"], declared=["export"])

    assert undeclared == ("exprots", "audit")


def test_without_a_catalogue_no_feature_is_undeclared():
    assert features_undeclared(features=["export", "audit"], declared=[]) == ()
