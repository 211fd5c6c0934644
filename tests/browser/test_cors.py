"""Browser clients: a page on a listed origin exchanges a token with fetch() and reads it; others cannot.

The pages are docs/browser-client, served from loopback ports other than the live server's (another
port is another origin); the issuer lists one of them in CORS_ALLOWED_ORIGINS.
"""

from __future__ import annotations

import json
from urllib.parse import quote, urlencode

import pytest
from django.core.cache import cache
from joserfc import jwt
from joserfc.jwk import KeySet
from playwright.sync_api import expect

from authz.rfc8693 import ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE

# The example's own client (exchange.js), imported into the page as the example's app.js does.
EXAMPLE_EXCHANGE = """async ([issuer, subjectToken, encoding]) => {
  const { exchangeToken } = await import(`${location.origin}/exchange.js`);
  return await exchangeToken({ issuer, subjectToken, audience: "api://orders", encoding });
}"""

# A bare fetch() whose outcome comes back to the test: what the page could read, or how it failed.
FETCH = """async ([url, init]) => {
  try {
    const response = await fetch(url, init);
    return { status: response.status, etag: response.headers.get("ETag"), body: await response.text() };
  } catch (error) {
    return { rejected: error.constructor.name };
  }
}"""


@pytest.fixture
def origins(browser_client_site, settings, fake_entra, signing_key, orders_policy) -> tuple[str, str]:
    """Two pages' origins: the first listed in CORS_ALLOWED_ORIGINS, the second not; a viewer grant."""
    listed, not_listed = browser_client_site(), browser_client_site()
    settings.CORS_ALLOWED_ORIGINS = [listed]
    orders_policy.grant(orders_policy.viewer, orders_policy.acme)
    cache.clear()
    return listed, not_listed


def exchange_init(subject_token: str, encoding: str) -> dict:
    fields = {
        "grant_type": TOKEN_EXCHANGE,
        "subject_token": subject_token,
        "subject_token_type": ACCESS_TOKEN_TYPE,
        "audience": "api://orders",
    }
    if encoding == "json":
        return {"method": "POST", "headers": {"Content-Type": "application/json"}, "body": json.dumps(fields)}
    content_type = "application/x-www-form-urlencoded"
    return {"method": "POST", "headers": {"Content-Type": content_type}, "body": urlencode(fields)}


@pytest.mark.parametrize("encoding", ["form", "json"])
def test_a_page_on_a_listed_origin_exchanges_with_fetch_and_reads_the_token(
    page, live_server, origins, fake_entra, requests_seen, encoding
):
    listed, _ = origins
    page.goto(f"{listed}/index.html")

    answer = page.evaluate(EXAMPLE_EXCHANGE, [live_server.url, fake_entra.mint(), encoding])

    assert answer["token_type"] == "Bearer"
    assert answer["scope"] == "orders.read"
    jwks = page.evaluate(FETCH, [f"{live_server.url}/.well-known/jwks.json", {}])
    token = jwt.decode(
        answer["access_token"], KeySet.import_key_set(json.loads(jwks["body"])), algorithms=["ES256"]
    )
    assert token.header["typ"] == "at+jwt"
    assert token.claims["aud"] == "api://orders"
    # A form body is a simple request; a JSON body is preceded by the preflight.
    assert requests_seen("/oauth2/token") == (["OPTIONS", "POST"] if encoding == "json" else ["POST"])


@pytest.mark.parametrize("encoding", ["form", "json"])
def test_a_page_on_an_origin_not_listed_cannot_read_the_answer(
    page, live_server, origins, fake_entra, requests_seen, encoding
):
    _, not_listed = origins
    page.goto(f"{not_listed}/index.html")

    outcome = page.evaluate(
        FETCH, [f"{live_server.url}/oauth2/token", exchange_init(fake_entra.mint(), encoding)]
    )

    assert outcome == {"rejected": "TypeError"}
    # The form POST was sent (CORS withholds the answer, it does not stop a simple request: the
    # Entra token is the credential, and only the page holding it can send it); the JSON POST
    # never left the browser once its preflight found no Access-Control-Allow-Origin.
    assert requests_seen("/oauth2/token") == (["OPTIONS"] if encoding == "json" else ["POST"])


def test_the_example_page_exchanges_a_pasted_token_and_keeps_it_in_memory_only(
    page, live_server, origins, fake_entra, screenshot
):
    listed, _ = origins
    page.goto(f"{listed}/index.html?issuer={quote(live_server.url)}")
    page.fill("textarea[name=subject_token]", fake_entra.mint())
    page.check("input[name=encoding][value=json]")

    page.click("#run")

    expect(page.locator("#token_type")).to_have_text("Bearer")
    expect(page.locator("#scope")).to_have_text("orders.read")
    expect(page.locator("#access_token")).to_contain_text("held in memory")
    expect(page.locator("#error")).to_be_hidden()
    screenshot("exchanged")
    stored = page.evaluate("() => [localStorage.length, sessionStorage.length, document.cookie]")
    assert stored == [0, 0, ""]
    assert page.context.cookies() == []


def test_the_example_page_on_an_origin_not_listed_says_why_it_cannot_read_the_answer(
    page, live_server, origins, fake_entra, screenshot
):
    _, not_listed = origins
    page.goto(f"{not_listed}/index.html?issuer={quote(live_server.url)}")
    page.fill("textarea[name=subject_token]", fake_entra.mint())

    page.click("#run")

    expect(page.locator("#error")).to_contain_text(
        f"origin ({not_listed}) is not in its CORS_ALLOWED_ORIGINS"
    )
    expect(page.locator("#answer")).to_be_hidden()
    screenshot("not-allowed")


def test_a_page_on_any_origin_reads_the_jwks_and_revalidates_it_with_its_etag(page, live_server, origins):
    _, not_listed = origins
    page.goto(f"{not_listed}/index.html")
    jwks_url = f"{live_server.url}/.well-known/jwks.json"

    first = page.evaluate(FETCH, [jwks_url, {"cache": "no-store"}])
    # If-None-Match set by the page is not a safelisted header: this one goes through a preflight.
    again = page.evaluate(
        FETCH, [jwks_url, {"cache": "no-store", "headers": {"If-None-Match": first["etag"]}}]
    )
    metadata = page.evaluate(FETCH, [f"{live_server.url}/.well-known/oauth-authorization-server", {}])

    assert first["status"] == 200 and json.loads(first["body"])["keys"]
    assert first["etag"]
    assert again["status"] == 304
    assert json.loads(metadata["body"])["jwks_uri"].endswith("/.well-known/jwks.json")


def test_a_page_on_a_listed_origin_cannot_read_the_portal(page, live_server, origins):
    listed, _ = origins
    page.goto(f"{listed}/index.html")

    outcome = page.evaluate(FETCH, [f"{live_server.url}/admin/login/", {}])

    assert outcome == {"rejected": "TypeError"}
