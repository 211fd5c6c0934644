"""The portal's identity providers page: every trusted provider, read-only, for platform admins only."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from accounts.models import User
from tests import fake_entra as entra
from tests import fake_providers as fakes

pytestmark = pytest.mark.django_db

PAGE = "/admin/identity-providers/"


@pytest.fixture
def declared(fake_providers_server, trust, settings) -> None:
    """The fake Entra's two directories and the three declared fakes, as the page lists them."""
    settings.ENTRA_TENANT_ID = [entra.TENANT_ID, entra.SECOND_TENANT_ID]
    settings.ENTRA_AUDIENCE = [entra.AUDIENCE]
    settings.ENTRA_REQUIRED_SCOPES = [entra.SCOPE]
    settings.ENTRA_DEV_DIRECTORY = False
    trust(*fake_providers_server.entries())


def test_a_platform_admin_reaches_the_providers_from_the_navigation(
    admin_client: Any, declared: None
) -> None:
    index = admin_client.get(reverse("admin:index"))
    people = next(section for section in index.context["app_list"] if section["name"] == "People")
    page = next(model for model in people["models"] if model["name"] == "Identity providers")
    assert page["admin_url"] == PAGE and page["add_url"] is None

    response = admin_client.get(PAGE)

    assert response.status_code == 200
    shown = [row.provider.name for row in response.context["rows"]]
    assert shown == [entra.TENANT_ID, entra.SECOND_TENANT_ID, "okta", "customers", "consumers"]


def test_the_page_shows_each_provider_s_rules_and_where_it_is_declared(
    admin_client: Any, declared: None, fake_providers_server: Any
) -> None:
    page = admin_client.get(PAGE).content.decode()

    for text in (
        "Microsoft Entra ID (workforce)",
        "Microsoft Entra External ID",
        "Azure AD B2C",
        "OpenID Connect",
        "ENTRA_TENANT_ID",
        "IDENTITY_PROVIDERS_FILE",
        fake_providers_server.oidc.issuer,
        f"{fake_providers_server.b2c.origin}/{fakes.B2C_TENANT_NAME}.onmicrosoft.com/{fakes.SIGN_IN_FLOW_CONFIGURED}/v2.0",
        fakes.SIGN_IN_FLOW_CONFIGURED,
        fakes.B2C_CLIENT_ID,
        "ES256",
        fakes.SCOPE,
        "none (group grants never apply)",
    ):
        assert text in page, text
    assert "<form" not in page.split('id="content-main"')[1]  # nothing to change here


def test_a_tenant_admin_has_neither_the_link_nor_the_page(client: Any, declared: None) -> None:
    staff = User.objects.create(username="bob", is_staff=True)  # a tenant admin: staff, not superuser
    client.force_login(staff)

    index = client.get(reverse("admin:index"))
    names = [model["name"] for section in index.context["app_list"] for model in section["models"]]

    assert "Identity providers" not in names
    assert client.get(PAGE).status_code == 403


def test_someone_not_signed_in_is_sent_to_sign_in(client: Any, declared: None) -> None:
    response = client.get(PAGE)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
