"""CORS: listed origins read the exchange's answers, any origin the public documents, none the portal."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from django.core.cache import cache

from authz.rfc8693 import ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE
from tests.support.settings import load_settings, run_in_production

APP = "https://app.example.com"
PUBLIC_DOCUMENTS = [
    "/.well-known/jwks.json",
    "/.well-known/oauth-authorization-server",
    "/.well-known/openid-configuration",
]
PORTAL = ["/admin/", "/admin/login/", "/oidc/authenticate/", "/oidc/callback/"]


def cors_headers(response) -> dict[str, str]:
    return {
        name.lower(): value
        for name, value in response.headers.items()
        if name.lower().startswith("access-control-")
    }


def preflight(client, path: str, *, origin: str = APP, method: str = "POST", headers: str = "content-type"):
    return client.options(
        path,
        headers={
            "origin": origin,
            "access-control-request-method": method,
            "access-control-request-headers": headers,
        },
    )


@pytest.fixture
def browser_exchange(client, settings, fake_entra, signing_key, orders_policy):
    """POST an exchange as a page on ``origin`` would (form-encoded, or JSON with ``json=True``)."""
    settings.CORS_ALLOWED_ORIGINS = [APP, "http://127.0.0.1:8080"]
    orders_policy.grant(orders_policy.viewer, orders_policy.acme)
    cache.clear()

    def post(*, origin: str | None = APP, json_body: bool = False, **fields: str):
        data = {
            "grant_type": TOKEN_EXCHANGE,
            "subject_token": fake_entra.mint(),
            "subject_token_type": ACCESS_TOKEN_TYPE,
            "audience": "api://orders",
            **fields,
        }
        headers = {"origin": origin} if origin else {}
        if json_body:
            return client.post(
                "/oauth2/token", json.dumps(data), content_type="application/json", headers=headers
            )
        return client.post(
            "/oauth2/token",
            urlencode(data),
            content_type="application/x-www-form-urlencoded",
            headers=headers,
        )

    yield post
    cache.clear()


# --- the token endpoint ----------------------------------------------------------------------------
@pytest.mark.parametrize("json_body", [False, True], ids=["form", "json"])
def test_a_listed_origin_may_read_the_token_answer_without_credentials(browser_exchange, json_body):
    response = browser_exchange(json_body=json_body)

    assert response.status_code == 200, response.content
    assert response["Access-Control-Allow-Origin"] == APP
    assert "access-control-allow-credentials" not in cors_headers(response)
    assert "origin" in response["Vary"].lower()
    assert response["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in response.headers
    assert response.json()["access_token"]


def test_a_listed_origin_may_read_refusals_and_their_retry_after(browser_exchange):
    response = browser_exchange(audience="api://nowhere")

    assert response.status_code == 400
    assert response["Access-Control-Allow-Origin"] == APP
    assert response["Cache-Control"] == "no-store"
    assert "retry-after" in response["Access-Control-Expose-Headers"].lower()


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example.com",
        "http://app.example.com",  # the same host over plain http is another origin
        "https://app.example.com:8443",  # so is another port
        "https://app.example.com.evil.example",
        "null",  # sandboxed frames and file:// pages
    ],
)
def test_an_origin_not_listed_gets_no_allow_origin_header(browser_exchange, origin):
    response = browser_exchange(origin=origin)

    assert response.status_code == 200  # the browser sent it; it will not let the page read it
    assert cors_headers(response) == {}
    assert "origin" in response["Vary"].lower()
    assert response["Cache-Control"] == "no-store"


def test_a_request_without_origin_is_answered_as_before(browser_exchange):
    response = browser_exchange(origin=None)

    assert response.status_code == 200
    assert cors_headers(response) == {}
    assert "origin" in response["Vary"].lower()  # a cache must not reuse it for a page that sends Origin


def test_the_preflight_of_a_json_post_allows_the_listed_origin_post_and_content_type_only(client, settings):
    settings.CORS_ALLOWED_ORIGINS = [APP]

    response = preflight(client, "/oauth2/token")

    assert response.status_code == 200
    assert response.content == b""
    headers = cors_headers(response)
    assert headers["access-control-allow-origin"] == APP
    assert headers["access-control-allow-methods"] == "POST"
    assert "content-type" in headers["access-control-allow-headers"].split(", ")
    assert "authorization" not in headers["access-control-allow-headers"]
    assert int(headers["access-control-max-age"]) > 0
    assert "access-control-allow-credentials" not in headers
    assert "origin" in response["Vary"].lower()


def test_the_preflight_from_an_origin_not_listed_allows_nothing(client, settings):
    settings.CORS_ALLOWED_ORIGINS = [APP]

    response = preflight(client, "/oauth2/token", origin="https://evil.example.com")

    assert cors_headers(response) == {}


def test_no_origin_is_listed_by_default(client, settings):
    response = preflight(client, "/oauth2/token")

    assert settings.CORS_ALLOWED_ORIGINS == []
    assert cors_headers(response) == {}


# --- the public documents ----------------------------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize("path", PUBLIC_DOCUMENTS)
def test_the_public_documents_are_readable_from_any_origin(client, signing_key, path):
    response = client.get(path, headers={"origin": "https://anyone.example.org"})

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "*"
    assert response["Access-Control-Expose-Headers"] == "ETag"
    assert "access-control-allow-credentials" not in cors_headers(response)
    assert response["Cache-Control"].startswith("public, max-age=")


@pytest.mark.django_db
@pytest.mark.parametrize("path", PUBLIC_DOCUMENTS)
def test_a_revalidated_public_document_is_readable_from_any_origin(client, signing_key, path):
    etag = client.get(path)["ETag"]

    response = client.get(path, headers={"origin": "https://anyone.example.org", "if-none-match": etag})

    assert response.status_code == 304
    assert response["Access-Control-Allow-Origin"] == "*"


@pytest.mark.django_db
@pytest.mark.parametrize("path", PUBLIC_DOCUMENTS)
def test_the_preflight_of_a_public_document_allows_get_and_head_with_if_none_match(client, path):
    response = preflight(
        client, path, origin="https://anyone.example.org", method="GET", headers="if-none-match"
    )

    assert response.status_code == 204
    assert cors_headers(response) == {
        "access-control-allow-origin": "*",
        "access-control-allow-methods": "GET, HEAD",
        "access-control-allow-headers": "If-None-Match",
        "access-control-max-age": "7200",
    }


@pytest.mark.django_db
@pytest.mark.parametrize("path", PUBLIC_DOCUMENTS)
def test_the_public_documents_still_refuse_writes(client, path):
    assert client.post(path, headers={"origin": "https://anyone.example.org"}).status_code == 405
    assert client.options(path).status_code == 405  # OPTIONS without a preflight's header


# --- the portal and the rest ---------------------------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize("path", [*PORTAL, "/healthz", "/api/schema/"])
def test_the_portal_and_other_paths_never_get_cors_headers(client, settings, path):
    settings.CORS_ALLOWED_ORIGINS = [APP]

    answers = [client.get(path, headers={"origin": APP}), preflight(client, path, method="GET")]

    for response in answers:
        assert cors_headers(response) == {}, (path, response.status_code)


# --- the setting ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value",
    [
        "*",
        "https://app.example.com,*",
        "https://*.example.com",
        "http://app.example.com",
        "https://app.example.com/",
        "https://app.example.com/spa",
        "https://app.example.com?x=1",
        "https://user@app.example.com",
        "app.example.com",
        "null",
    ],
)
def test_production_refuses_an_origin_that_is_not_exact_and_names_the_setting(value):
    result = load_settings(CORS_ALLOWED_ORIGINS=value)

    assert result.returncode != 0
    assert "ImproperlyConfigured: CORS_ALLOWED_ORIGINS:" in result.stderr


def test_production_accepts_exact_origins_and_plain_http_on_loopback():
    result = load_settings(
        CORS_ALLOWED_ORIGINS="https://app.example.com, https://admin.example.com:8443,http://127.0.0.1:8080"
    )

    assert result.returncode == 0, result.stderr


def test_development_may_allow_every_origin_still_without_credentials():
    code = "from django.conf import settings as s; print(s.CORS_ALLOW_ALL_ORIGINS, s.CORS_ALLOW_CREDENTIALS)"
    result = run_in_production(code, DEBUG="true", CORS_ALLOWED_ORIGINS="*")

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "False"]
