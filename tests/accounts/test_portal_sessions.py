"""Portal sessions: an absolute lifetime, and rights re-checked against Entra when the ID token expires.

The session refresh is the real round trip: our middleware redirects to the fake provider's authorize
endpoint with ``prompt=none`` (over HTTP), the provider answers with a redirect carrying a code or an
error, and our callback redeems the code at the provider's token endpoint.
"""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from accounts.models import User
from authz.models import Tenant
from authz.portal import tenant_administrator_add
from tests import fake_oidc as oidc
from tests.support.settings import run_in_production

pytestmark = pytest.mark.django_db

FAILED = "/admin/login/?sign_in=failed"
EIGHT_HOURS = 8 * 3600


def sign_in(client: Client, fake: oidc.FakeOidcProvider) -> None:
    start = client.get("/oidc/authenticate/", {"next": "/admin/"})
    back = urlsplit(fake.approve(start["Location"]))
    done = client.get(back.path, {name: values[0] for name, values in parse_qs(back.query).items()})
    assert done["Location"] == "/admin/", done


def id_token_expires(client: Client) -> None:
    """The moment the ID token's renewal interval has passed (the library keeps it in the session)."""
    session = client.session
    session["oidc_id_token_expiration"] = 0
    session.save()


def provider_answer(location: str) -> str:
    """What the provider's authorize endpoint answers the browser, over HTTP: where it sends it next."""
    answer = requests.get(location, allow_redirects=False, timeout=5)
    assert answer.status_code == 302, answer.text
    return answer.headers["Location"]


def renew(client: Client, fake: oidc.FakeOidcProvider, response):
    """Follow a silent renewal to the end: provider (prompt=none), then our callback."""
    assert response.status_code == 302
    assert response["Location"].startswith(fake.endpoint("authorize") + "?")
    authorize = {name: values[0] for name, values in parse_qs(urlsplit(response["Location"]).query).items()}
    assert authorize["prompt"] == "none"
    back = urlsplit(provider_answer(response["Location"]))
    return client.get(back.path, {name: values[0] for name, values in parse_qs(back.query).items()})


def signed_in_user(client: Client) -> User | None:
    response = client.get("/admin/")
    return response.wsgi_request.user if response.status_code == 200 else None


# --- rights re-checked when the ID token expires -------------------------------------------------
def test_an_admin_whose_role_is_kept_is_renewed_silently_and_returns_where_they_were(client, fake_oidc):
    sign_in(client, fake_oidc)
    id_token_expires(client)

    done = renew(client, fake_oidc, client.get("/admin/authz/grant/"))

    assert done["Location"] == "/admin/authz/grant/"
    assert signed_in_user(client).is_superuser
    assert client.session["oidc_id_token_expiration"] > 0


def test_an_admin_whose_role_was_removed_in_entra_loses_the_session_when_the_id_token_expires(
    client, fake_oidc
):
    sign_in(client, fake_oidc)
    fake_oidc.account.roles = []
    assert signed_in_user(client).is_superuser  # until the ID token expires

    id_token_expires(client)
    done = renew(client, fake_oidc, client.get("/admin/"))

    assert done["Location"] == FAILED
    user = User.objects.get()
    assert not user.is_superuser and not user.is_staff
    assert signed_in_user(client) is None
    assert client.get("/admin/login/").status_code == 200  # signed out: no renewal loop


def test_an_admin_who_still_administers_a_tenant_keeps_the_session_without_superuser(client, fake_oidc):
    sign_in(client, fake_oidc)
    user = User.objects.get()
    root = User.objects.create_superuser("root", password="a-long-local-password")
    tenant_administrator_add(user=user, tenant=Tenant.objects.create(slug="acme", name="Acme"), by=root)
    fake_oidc.account.roles = []

    id_token_expires(client)
    done = renew(client, fake_oidc, client.get("/admin/"))

    assert done["Location"] == "/admin/"
    user.refresh_from_db()
    assert user.is_staff and not user.is_superuser
    assert signed_in_user(client) == user


def test_an_admin_disabled_in_entra_loses_the_session_when_the_id_token_expires(client, fake_oidc):
    sign_in(client, fake_oidc)
    fake_oidc.account.disabled = True

    id_token_expires(client)
    done = renew(client, fake_oidc, client.get("/admin/"))

    assert done["Location"] == FAILED
    assert signed_in_user(client) is None


def test_a_write_after_the_id_token_expired_is_not_carried_out_before_the_rights_are_checked(
    client, fake_oidc
):
    sign_in(client, fake_oidc)
    fake_oidc.account.roles = []
    id_token_expires(client)

    response = client.post("/admin/authz/tenant/add/", {"slug": "evil", "name": "Evil", "status": "active"})

    assert response.status_code == 302
    assert response["Location"].startswith(fake_oidc.endpoint("authorize") + "?")
    assert not Tenant.objects.filter(slug="evil").exists()
    assert renew(client, fake_oidc, response)["Location"] == FAILED


def test_logging_out_after_the_id_token_expired_still_logs_out(client, fake_oidc):
    sign_in(client, fake_oidc)
    id_token_expires(client)

    response = client.post("/admin/logout/")

    assert response["Location"].startswith(fake_oidc.endpoint("logout"))
    assert signed_in_user(client) is None


def test_only_the_portal_is_renewed_never_the_exchange_or_the_public_documents(client, fake_oidc):
    sign_in(client, fake_oidc)
    id_token_expires(client)

    assert client.get("/.well-known/jwks.json").status_code in (200, 503)
    assert client.post("/oauth2/token", {"grant_type": "password"}).status_code == 400
    assert fake_oidc.authorize_requests[-1].get("prompt") != "none"


def test_a_password_session_is_not_sent_to_entra(client, fake_oidc):
    User.objects.create_superuser("root", password="a-long-local-password")
    client.post("/admin/login/", {"username": "root", "password": "a-long-local-password"})
    id_token_expires(client)

    assert client.get("/admin/").status_code == 200
    assert fake_oidc.authorize_requests == []


# --- an absolute lifetime ------------------------------------------------------------------------
def expiry_of(client: Client):
    return Session.objects.get(session_key=client.cookies["sessionid"].value).expire_date


def test_a_password_session_ends_eight_hours_after_sign_in(client, fake_oidc):
    User.objects.create_superuser("root", password="a-long-local-password")
    before = timezone.now()
    client.post("/admin/login/", {"username": "root", "password": "a-long-local-password"})

    expiry = expiry_of(client)

    assert (
        before + timedelta(seconds=EIGHT_HOURS) <= expiry <= timezone.now() + timedelta(seconds=EIGHT_HOURS)
    )
    assert client.cookies["sessionid"]["max-age"] <= EIGHT_HOURS


def test_an_entra_session_ends_eight_hours_after_sign_in_however_often_it_is_renewed(client, fake_oidc):
    sign_in(client, fake_oidc)
    expiry = expiry_of(client)
    assert expiry <= timezone.now() + timedelta(seconds=EIGHT_HOURS)

    id_token_expires(client)
    renew(client, fake_oidc, client.get("/admin/"))

    assert signed_in_user(client) is not None
    assert expiry_of(client) == expiry


def test_a_session_past_its_lifetime_is_over(client, fake_oidc):
    sign_in(client, fake_oidc)
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))

    assert signed_in_user(client) is None


def test_the_lifetime_and_the_renewal_interval_are_settings():
    show = (
        "from django.conf import settings as s; import json; print(json.dumps([s.SESSION_COOKIE_AGE, "
        "s.PORTAL_SESSION_MAX_AGE, s.OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS]))"
    )

    default = run_in_production(show)
    chosen = run_in_production(show, PORTAL_SESSION_MAX_AGE="3600", OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS="300")

    assert json.loads(default.stdout.strip().splitlines()[-1]) == [EIGHT_HOURS, EIGHT_HOURS, 900], (
        default.stderr
    )
    assert json.loads(chosen.stdout.strip().splitlines()[-1]) == [3600, 3600, 300], chosen.stderr
