"""Content-Security-Policy: the portal's pages load only our own files; API answers load nothing."""

from __future__ import annotations

import pytest

from accounts.models import User

PORTAL_PAGES = ["/admin/login/", "/admin/login/?sign_in=failed"]
SIGNED_IN_PAGES = [
    "/admin/",
    "/admin/authz/grant/",
    "/admin/authz/grant/add/",
    "/admin/authz/grant/preview/",
    "/admin/authz/tenant/add/",
    "/admin/keys/signingkey/",
]
API_ANSWERS = [
    ("get", "/.well-known/jwks.json"),
    ("get", "/.well-known/openid-configuration"),
    ("get", "/healthz"),
    ("post", "/oauth2/token"),
    ("get", "/oauth2/token"),
    ("get", "/api/schema/"),
]


def directives(response) -> dict[str, list[str]]:
    header = response.headers["Content-Security-Policy"]
    parsed: dict[str, list[str]] = {}
    for directive in header.split(";"):
        name, *values = directive.split()
        assert name not in parsed, f"{name} given twice"
        parsed[name] = values
    return parsed


def assert_portal_policy(response, authority: str) -> None:
    policy = directives(response)
    assert policy["default-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["form-action"] == ["'self'", authority]
    # Nothing inline, nothing evaluated, nothing from elsewhere.
    header = response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in header and "unsafe-eval" not in header and "*" not in header


@pytest.mark.django_db
@pytest.mark.parametrize("path", PORTAL_PAGES)
def test_a_portal_page_carries_the_portal_policy(client, settings, path):
    settings.ENTRA_AUTHORITY = "https://login.microsoftonline.com"

    response = client.get(path)

    assert response.status_code == 200
    assert_portal_policy(response, "https://login.microsoftonline.com")


@pytest.mark.django_db
@pytest.mark.parametrize("path", SIGNED_IN_PAGES)
def test_every_signed_in_page_carries_the_portal_policy(admin_client, settings, path):
    settings.ENTRA_AUTHORITY = "https://login.microsoftonline.us"

    response = admin_client.get(path)

    assert response.status_code == 200
    assert_portal_policy(response, "https://login.microsoftonline.us")


@pytest.mark.django_db
def test_form_action_names_only_the_authoritys_origin(client, settings):
    """Logging out posts a form that is redirected to Entra's logout: the browser checks that redirect."""
    settings.ENTRA_AUTHORITY = "http://127.0.0.1:8123"

    assert directives(client.get("/admin/login/"))["form-action"] == ["'self'", "http://127.0.0.1:8123"]


@pytest.mark.django_db
def test_an_error_page_of_the_portal_carries_the_portal_policy(client, settings):
    User.objects.create_user("staff", password="a-long-local-password", is_staff=True)
    client.login(username="staff", password="a-long-local-password")

    response = client.get("/admin/authz/grant/preview/")

    assert response.status_code == 403
    assert directives(response)["frame-ancestors"] == ["'none'"]


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path"), API_ANSWERS)
def test_an_api_answer_loads_nothing_and_is_never_framed(client, signing_key, method, path):
    response = getattr(client, method)(path)

    assert directives(response) == {"default-src": ["'none'"], "frame-ancestors": ["'none'"]}


@pytest.mark.django_db
def test_a_not_found_answer_carries_a_policy_too(client):
    response = client.get("/no/such/page")

    assert response.status_code == 404
    assert "frame-ancestors" in directives(response)
