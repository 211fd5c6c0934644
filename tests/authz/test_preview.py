"""The effective-access preview page, through the test client: the claims a token would carry, and why."""

from __future__ import annotations

from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from accounts.models import Principal, User
from authz.errors import PreviewTargetUnknown
from authz.models import Audience, Grant, Permission, Role, Tenant
from authz.portal import tenant_administrator_add
from authz.preview import access_preview
from tests import fake_entra as entra
from tests.support.exchange import GROUP, OrdersPolicy, days

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]

PREVIEW = "/admin/authz/grant/preview/"


@pytest.fixture
def grants(orders_policy: OrdersPolicy) -> dict[str, Grant]:
    """In acme: a live viewer grant, an expired and a future editor grant, and a live group grant."""
    return {
        "viewer": orders_policy.grant(orders_policy.viewer, orders_policy.acme),
        "expired": orders_policy.grant(orders_policy.editor, orders_policy.acme, valid_until=days(-1)),
        "group": orders_policy.grant(orders_policy.editor, orders_policy.globex, subject=GROUP, kind="group"),
        "future": orders_policy.grant(orders_policy.editor, orders_policy.globex, valid_from=days(2)),
    }


def preview(client: Any, **fields: str) -> Any:
    params = {
        "provider": entra.TENANT_ID,
        "subject_id": entra.OID,
        "tenant": "acme",
        "audience": "api://orders",
        **fields,
    }
    response = client.get(PREVIEW, params)
    assert response.status_code == 200
    return response


def omissions(response: Any) -> set[tuple]:
    return {
        (omission.reason, omission.grant.pk if omission.grant else None, omission.permission)
        for omission in response.context["preview"].omissions
    }


def test_it_shows_the_claims_a_token_would_carry(admin_client: Any, grants: dict) -> None:
    response = preview(admin_client)

    assert response.context["preview"].claims == {
        "aud": "api://orders",
        "tenant": "acme",
        "roles": ["viewer"],
        "scope": "orders.read",
    }
    assert response.context["preview"].refusal is None
    page = response.content.decode()
    assert "orders.read" in page
    assert f"/admin/authz/grant/{grants['viewer'].pk}/change/" in page  # the grant that gave it


def test_it_says_what_was_left_out_and_why(admin_client: Any, grants: dict) -> None:
    response = preview(admin_client)

    assert omissions(response) == {
        ("grant_expired", grants["expired"].pk, None),
        ("not_registered_for_audience", grants["viewer"].pk, "billing.read"),
    }
    assert "The grant has ended" in response.content.decode()


def test_a_role_that_gives_nothing_for_the_audience_is_left_out_of_roles_and_says_why(
    admin_client: Any, grants: dict
) -> None:
    response = preview(admin_client, audience="api://empty")

    shown = response.context["preview"]
    assert shown.claims["roles"] == []
    assert ("role_gives_no_permission", grants["viewer"].pk, None) in omissions(response)
    assert shown.refusal == "invalid_target: the subject holds no permission for this audience"
    assert "The role gives no permission in this token" in response.content.decode()


def test_it_says_when_a_grant_is_not_yet_valid_and_a_group_is_not_in_the_token(
    admin_client: Any, grants: dict
) -> None:
    response = preview(admin_client, tenant="globex")

    assert ("grant_not_yet_valid", grants["future"].pk, None) in omissions(response)
    assert response.context["preview"].claims["roles"] == []
    assert "no access" in response.context["preview"].refusal


def test_a_group_in_the_token_gives_its_grant(admin_client: Any, grants: dict) -> None:
    response = preview(admin_client, tenant="globex", group_ids=f"{GROUP.upper()}, ")

    claims = response.context["preview"].claims
    assert (claims["roles"], claims["scope"]) == (["editor"], "orders.read orders.write")
    assert ("feature_missing", grants["group"].pk, "orders.export") in omissions(response)


def test_under_group_overage_the_group_grant_does_not_apply(admin_client: Any, grants: dict) -> None:
    response = preview(admin_client, tenant="globex", group_ids=GROUP, groups_overage="on")

    assert response.context["preview"].claims["roles"] == []
    assert ("group_overage", grants["group"].pk, None) in omissions(response)


def test_a_suspended_tenant_gives_nothing_and_says_so(
    admin_client: Any, orders_policy: OrdersPolicy, grants: dict
) -> None:
    Tenant.objects.filter(pk=orders_policy.acme.pk).update(status=Tenant.Status.SUSPENDED)

    response = preview(admin_client)

    assert response.context["preview"].claims["roles"] == []
    assert ("tenant_suspended", None, None) in omissions(response)
    assert "suspended" in response.context["preview"].refusal


def test_a_requested_scope_down_scopes_and_one_beyond_is_refused(admin_client: Any, grants: dict) -> None:
    response = preview(admin_client, scope="orders.write")

    assert response.context["preview"].unavailable_scope == ("orders.write",)
    assert response.context["preview"].refusal.startswith("invalid_scope")


def test_it_rejects_a_subject_that_is_not_a_guid(admin_client: Any, grants: dict) -> None:
    response = preview(admin_client, subject_id="ada@example.com")

    assert response.context["preview"] is None
    assert "object ids and group ids are GUIDs" in response.content.decode()


def test_a_link_from_a_grant_prefills_the_form_without_errors(admin_client: Any, grants: dict) -> None:
    response = admin_client.get(PREVIEW, {"subject_id": entra.OID, "tenant": "acme"})

    assert response.status_code == 200
    assert response.context["preview"] is None
    assert not response.context["form"].errors


def test_the_preview_matches_what_the_exchange_issues(
    admin_client: Any, client: Any, exchange: Any, fake_entra: Any, grants: dict
) -> None:
    """The preview and the exchange use the same selectors and engine: the claims agree."""
    token = exchange(fake_entra.mint(groups=[GROUP]), tenant="globex").json()["access_token"]
    key_set = KeySet.import_key_set(client.get("/.well-known/jwks.json").json())
    issued = jwt.decode(token, key_set, algorithms=["ES256", "RS256", "PS256"]).claims

    shown = preview(admin_client, tenant="globex", group_ids=GROUP).context["preview"].claims

    assert shown == {name: issued[name] for name in ("aud", "tenant", "roles", "scope")}


# --- identity providers ---------------------------------------------------------------------------


def test_the_same_object_id_from_the_other_directory_is_previewed_with_none_of_the_grants(
    admin_client: Any, grants: dict
) -> None:
    response = preview(admin_client, provider=entra.SECOND_TENANT_ID, tenant="globex", group_ids=GROUP)

    shown = response.context["preview"]
    assert shown.provider == entra.SECOND_TENANT_ID
    assert shown.claims["roles"] == [] and shown.claims["scope"] == ""
    assert shown.refusal == "invalid_request: no access to tenant 'globex'"
    assert f'<code id="preview-provider">{entra.SECOND_TENANT_ID}</code>' in response.content.decode()


def test_the_preview_needs_a_trusted_provider_and_names_the_one_of_each_grant(
    admin_client: Any, grants: dict
) -> None:
    refused = preview(admin_client, provider="nosuch-idp")
    shown = preview(admin_client)

    assert refused.context["preview"] is None and "provider" in refused.context["form"].errors
    assert f"(user {entra.OID} of {entra.TENANT_ID})" in shown.content.decode()


def test_with_one_trusted_provider_the_form_chooses_it(
    admin_client: Any, grants: dict, settings: Any
) -> None:
    settings.ENTRA_TENANT_ID = [entra.TENANT_ID]

    response = admin_client.get(PREVIEW)

    assert response.context["form"]["provider"].value() == entra.TENANT_ID


def test_a_link_from_a_grant_names_its_provider(admin_client: Any, grants: dict) -> None:
    page = admin_client.get(f"/admin/authz/grant/{grants['viewer'].pk}/change/").content.decode()

    assert f"provider={entra.TENANT_ID}" in page


# --- tenant admins ------------------------------------------------------------------------------


@pytest.fixture
def acme_admin_client(client: Any, orders_policy: OrdersPolicy, admin_user: User) -> Any:
    user = User.objects.create_user(username="alice", password="x" * 20)
    tenant_administrator_add(user=user, tenant=orders_policy.acme, by=admin_user)
    client.force_login(user)
    return client


def test_a_tenant_admin_previews_their_tenant(acme_admin_client: Any, grants: dict) -> None:
    response = preview(acme_admin_client)

    assert response.context["preview"].claims["roles"] == ["viewer"]


def test_a_tenant_admin_cannot_preview_another_tenant(acme_admin_client: Any, grants: dict) -> None:
    response = preview(acme_admin_client, tenant="globex", group_ids=GROUP)

    assert response.context["preview"] is None
    assert "Select a valid choice" in response.content.decode()
    assert "globex" not in [choice[1] for choice in response.context["form"].fields["tenant"].choices]


def test_a_tenant_admin_is_offered_only_the_audiences_that_concern_their_tenants(
    acme_admin_client: Any, admin_client: Any, orders_policy: OrdersPolicy
) -> None:
    """Audiences registering a permission of a role usable in acme: not globex's own, not empty ones."""
    hr_read = Permission.objects.create(code="hr.read")
    Audience.objects.create(identifier="api://globex-hr", name="HR").permissions.set([hr_read])
    Role.objects.create(slug="hr", name="HR", tenant=orders_policy.globex).permissions.set([hr_read])
    acme_only = Permission.objects.create(code="stock.read")
    Audience.objects.create(identifier="api://stock", name="Stock").permissions.set([acme_only])
    Role.objects.create(slug="stock", name="Stock", tenant=orders_policy.acme).permissions.set([acme_only])

    offered = audience_choices(acme_admin_client.get(PREVIEW))
    refused = acme_admin_client.get(
        PREVIEW, {"subject_id": entra.OID, "tenant": "acme", "audience": "api://globex-hr"}
    )

    assert offered == ["api://billing", "api://orders", "api://stock"]
    assert refused.context["preview"] is None
    assert "Select a valid choice" in refused.content.decode()
    assert "api://globex-hr" not in refused.content.decode()
    assert audience_choices(admin_client.get(PREVIEW)) == [
        "api://billing",
        "api://empty",
        "api://globex-hr",
        "api://orders",
        "api://stock",
    ]


def audience_choices(response: Any) -> list[str]:
    return [str(value) for value, _ in response.context["form"].fields["audience"].choices if value]


def test_a_user_without_a_tenant_cannot_open_the_preview(client: Any, grants: dict) -> None:
    client.force_login(User.objects.create_user(username="staff", password="x" * 20, is_staff=True))

    assert client.get(PREVIEW).status_code == 403


def test_a_tenant_owned_role_of_another_tenant_is_never_shown_as_given(
    admin_client: Any, orders_policy: OrdersPolicy
) -> None:
    """A row written around validation: the same selector as the exchange ignores it."""
    foreign = Role.objects.create(slug="globex-only", name="G", tenant=orders_policy.globex)
    foreign.permissions.set(orders_policy.editor.permissions.all())
    Grant.objects.bulk_create(
        [
            Grant(
                tenant=orders_policy.acme,
                role=foreign,
                provider=entra.TENANT_ID,
                subject_type="user",
                subject_id=entra.OID,
            )
        ]
    )

    response = preview(admin_client)

    assert response.context["preview"].claims["roles"] == []


def test_a_platform_admin_sees_the_subjects_principal_and_last_exchange(
    admin_client: Any, grants: dict
) -> None:
    principal = Principal.objects.create(provider=entra.TENANT_ID, subject=entra.OID, last_seen_at=days(-1))
    Principal.objects.create(provider=entra.SECOND_TENANT_ID, subject=entra.OID)  # someone else

    response = preview(admin_client)

    assert response.context["preview"].principals == (principal,)
    assert str(principal.id) in response.content.decode()


def test_a_tenant_admin_is_not_shown_principals(acme_admin_client: Any, grants: dict) -> None:
    principal = Principal.objects.create(provider=entra.TENANT_ID, subject=entra.OID)

    response = preview(acme_admin_client)

    assert response.context["preview"].principals == ()
    assert str(principal.id) not in response.content.decode()


@pytest.mark.parametrize(
    ("tenant", "audience"), [("initech", "api://orders"), ("acme", "api://gone")], ids=["tenant", "audience"]
)
def test_a_tenant_or_audience_gone_since_the_form_was_filled_is_a_preview_error(
    grants: dict, tenant: str, audience: str
) -> None:
    with pytest.raises(PreviewTargetUnknown, match="no longer exists"):
        access_preview(
            provider=entra.TENANT_ID,
            subject_id=entra.OID,
            group_ids=[],
            groups_overage=False,
            tenant_slug=tenant,
            audience_identifier=audience,
            requested_scope=None,
            now=days(0),
        )
