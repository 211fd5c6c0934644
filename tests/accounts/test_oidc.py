"""Portal sign-in with Entra (accounts/oidc.py) against a fake OpenID provider on loopback."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import authenticate
from django.test import Client

from accounts.models import User
from accounts.portal_users import PortalIdentity, portal_user_create
from tests import fake_oidc as oidc
from tests.support.settings import CHECK_DEPLOY, load_settings, run_in_production

pytestmark = pytest.mark.django_db

FAILED = "/admin/login/?sign_in=failed"


def sign_in(client: Client, fake: oidc.FakeOidcProvider, *, next_url: str = "/admin/"):
    """The browser's trip: our authenticate view → the provider's sign-in page → our callback."""
    start = client.get("/oidc/authenticate/", {"next": next_url})
    assert start.status_code == 302
    assert start["Location"].startswith(fake.endpoint("authorize") + "?")
    back = urlsplit(fake.approve(start["Location"]))
    return client.get(back.path, {name: values[0] for name, values in parse_qs(back.query).items()})


def signed_in_user(client: Client) -> User | None:
    response = client.get("/admin/")
    return response.wsgi_request.user if response.status_code == 200 else None


def administers_a_tenant(*, user: User) -> bool:
    """A stand-in for authz's tenant-admin check: the people named Grace administer a tenant."""
    return user.first_name.startswith("Grace")


def test_a_platform_admin_signs_in_with_pkce_nonce_and_a_verified_id_token(client, fake_oidc):
    response = sign_in(client, fake_oidc)

    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    user = User.objects.get()
    assert (user.entra_tid, user.entra_oid) == (oidc.HOME_TID, fake_oidc.account.oid)
    assert user.is_staff and user.is_superuser
    assert not user.has_usable_password()
    assert user.first_name == "Ada Lovelace"
    assert signed_in_user(client) == user
    authorize = fake_oidc.authorize_requests[-1]
    assert authorize["code_challenge_method"] == "S256"
    assert authorize["nonce"] and authorize["state"]
    assert authorize["scope"] == "openid profile"
    assert len(fake_oidc.token_requests[-1]["code_verifier"]) >= 43


def test_it_caches_the_providers_keys_across_sign_ins(client, fake_oidc):
    sign_in(client, fake_oidc)
    sign_in(Client(), fake_oidc)

    assert User.objects.get().is_superuser
    assert len(fake_oidc.token_requests) == 2
    assert fake_oidc.fetches[f"/{oidc.HOME_TID}/discovery/v2.0/keys"] == 1


@pytest.mark.parametrize(
    ("claims", "why"),
    [
        ({"aud": "someone-elses-client-id"}, "wrong audience"),
        ({"aud": [oidc.CLIENT_ID, "another"]}, "several audiences"),
        ({"iss": "https://login.example.com/evil/v2.0"}, "wrong issuer"),
        ({"nonce": "a-nonce-from-another-sign-in"}, "wrong nonce"),
        ({"nonce": None}, "no nonce"),
        ({"exp": 1_000_000_000, "iat": 999_990_000, "nbf": 999_990_000}, "expired"),
        ({"tid": oidc.OTHER_TID}, "another directory"),
        ({"oid": None}, "no object id"),
        ({"oid": "not-a-guid"}, "an object id that is no GUID"),
    ],
)
def test_it_refuses_an_id_token_that_fails_a_check(client, fake_oidc, claims, why):
    fake_oidc.id_token_claims = claims

    response = sign_in(client, fake_oidc)

    assert response.status_code == 302, why
    assert response["Location"] == FAILED, why
    assert signed_in_user(client) is None, why
    assert not User.objects.filter(is_staff=True).exists(), why


def test_it_refuses_an_id_token_signed_by_a_key_the_directory_does_not_publish(client, fake_oidc):
    fake_oidc.account = oidc.Account(tid=oidc.OTHER_TID)
    fake_oidc.id_token_claims = {"iss": f"{fake_oidc.authority}/{oidc.HOME_TID}/v2.0", "tid": oidc.HOME_TID}

    assert sign_in(client, fake_oidc)["Location"] == FAILED
    assert signed_in_user(client) is None


def test_an_entra_account_without_the_admin_role_gets_no_access(client, fake_oidc):
    fake_oidc.account = oidc.Account(roles=[])

    response = sign_in(client, fake_oidc)

    assert response["Location"] == FAILED
    assert signed_in_user(client) is None
    user = User.objects.get()  # kept, so a platform admin can make them a tenant admin
    assert not user.is_staff and not user.is_superuser


def test_an_app_role_other_than_the_admin_role_gives_no_access(client, fake_oidc):
    fake_oidc.account = oidc.Account(roles=["Portal.Reader", "portal.admin"])

    assert sign_in(client, fake_oidc)["Location"] == FAILED


def test_removing_the_admin_role_removes_the_rights_at_the_next_sign_in(client, fake_oidc):
    account = fake_oidc.account
    sign_in(client, fake_oidc)
    assert User.objects.get().is_superuser

    account.roles = []
    again = Client()
    response = sign_in(again, fake_oidc)

    assert response["Location"] == FAILED
    user = User.objects.get()
    assert not user.is_superuser and not user.is_staff
    assert signed_in_user(again) is None
    assert (
        signed_in_user(client) is None
    )  # the earlier session lost the portal too (is_staff is read per request)


def test_a_tenant_admin_named_by_the_staff_check_gets_staff_access_but_not_superuser(
    client, fake_oidc, settings
):
    settings.PORTAL_STAFF_CHECK = f"{__name__}.administers_a_tenant"
    fake_oidc.account = oidc.Account(name="Grace Hopper", roles=[])

    assert sign_in(client, fake_oidc)["Location"] == "/admin/"

    user = User.objects.get()
    assert user.is_staff and not user.is_superuser


def test_a_tenant_administrator_in_authz_keeps_staff_access_without_the_admin_role(client, fake_oidc):
    from authz.models import Tenant
    from authz.portal import tenant_administrator_add

    fake_oidc.account = oidc.Account(roles=[])
    assert sign_in(client, fake_oidc)["Location"] == FAILED  # first sign-in: known, but no rights yet
    user = User.objects.get()
    root = User.objects.create_superuser("root", password="a-long-local-password")
    tenant_administrator_add(user=user, tenant=Tenant.objects.create(slug="acme", name="Acme"), by=root)

    assert sign_in(Client(), fake_oidc)["Location"] == "/admin/"
    user.refresh_from_db()
    assert user.is_staff and not user.is_superuser


def test_users_are_matched_by_directory_and_object_id_never_by_email(client, fake_oidc):
    local = User.objects.create_superuser("ada", email="ada@example.com", password="a-long-local-password")
    fake_oidc.account = oidc.Account(email="ada@example.com", roles=[])

    assert sign_in(client, fake_oidc)["Location"] == FAILED

    local.refresh_from_db()
    assert local.entra_oid == "" and local.is_superuser
    assert User.objects.filter(email__iexact="ada@example.com").count() == 1
    assert User.objects.filter(entra_oid=fake_oidc.account.oid).count() == 1


def test_the_same_email_and_object_id_in_two_directories_are_two_users(fake_oidc, settings):
    oid = "abababab-abab-4bab-8bab-abababababab"
    fake_oidc.account = oidc.Account(oid=oid, tid=oidc.HOME_TID, email="sam@example.com")
    assert sign_in(Client(), fake_oidc)["Location"] == "/admin/"

    settings.PORTAL_TENANT_ID = oidc.OTHER_TID
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = fake_oidc.endpoint("authorize", oidc.OTHER_TID)
    settings.OIDC_OP_TOKEN_ENDPOINT = fake_oidc.endpoint("token", oidc.OTHER_TID)
    fake_oidc.account = oidc.Account(oid=oid, tid=oidc.OTHER_TID, email="sam@example.com", roles=[])
    client = Client()
    start = client.get("/oidc/authenticate/")
    back = urlsplit(fake_oidc.approve(start["Location"]))
    response = client.get(back.path, {name: values[0] for name, values in parse_qs(back.query).items()})

    assert response["Location"] == FAILED
    home, other = User.objects.get(entra_tid=oidc.HOME_TID), User.objects.get(entra_tid=oidc.OTHER_TID)
    assert home.pk != other.pk and home.entra_oid == other.entra_oid == oid
    assert home.is_superuser and not other.is_superuser


def test_a_code_is_redeemed_once_and_a_replayed_callback_is_refused(client, fake_oidc):
    start = client.get("/oidc/authenticate/")
    back = urlsplit(fake_oidc.approve(start["Location"]))
    query = {name: values[0] for name, values in parse_qs(back.query).items()}
    assert client.get(back.path, query)["Location"] == "/admin/"
    client.logout()

    replay = client.get(back.path, query)

    assert replay.status_code in (302, 400)
    assert signed_in_user(client) is None


def test_a_callback_with_a_state_this_browser_never_sent_is_refused(client, fake_oidc):
    client.get("/oidc/authenticate/")

    response = client.get("/oidc/callback/", {"code": "stolen", "state": "not-ours"})

    assert response.status_code == 400
    assert signed_in_user(client) is None


def test_a_provider_that_is_down_is_a_failed_sign_in_not_an_error_page(client, fake_oidc, settings):
    settings.OIDC_OP_TOKEN_ENDPOINT = "http://127.0.0.1:9/token"

    assert sign_in(client, fake_oidc)["Location"] == FAILED


def test_a_deactivated_admins_session_stops_working(client, fake_oidc):
    sign_in(client, fake_oidc)
    User.objects.update(is_active=False)

    assert signed_in_user(client) is None


def test_a_deactivated_admin_cannot_sign_in_again(client, fake_oidc):
    identity = PortalIdentity(tid=oidc.HOME_TID, oid=fake_oidc.account.oid, name="Ada", roles=frozenset())
    user = portal_user_create(identity=identity)
    User.objects.filter(pk=user.pk).update(is_active=False)

    assert sign_in(client, fake_oidc)["Location"] == FAILED


def test_creating_the_same_identity_twice_returns_the_first_user(fake_oidc):
    identity = PortalIdentity(tid=oidc.HOME_TID, oid=fake_oidc.account.oid, name="Ada", roles=frozenset())

    assert portal_user_create(identity=identity) == portal_user_create(identity=identity)


# --- the login page and logout ---------------------------------------------------------------
def test_the_login_page_offers_microsoft_and_passwords_for_local_use(client, fake_oidc):
    page = client.get("/admin/login/?next=/admin/authz/")

    body = page.content.decode()
    assert page.status_code == 200
    assert 'id="sign-in-microsoft"' in body and "/oidc/authenticate/?next=/admin/authz/" in body
    assert 'name="password"' in body


def test_with_password_sign_in_off_the_page_offers_only_microsoft_and_refuses_password_posts(
    client, fake_oidc, settings
):
    User.objects.create_superuser("root", password="a-long-local-password")
    settings.PORTAL_PASSWORD_LOGIN = False
    settings.AUTHENTICATION_BACKENDS = ["accounts.oidc.EntraBackend"]

    page = client.get("/admin/login/")
    refused = client.post("/admin/login/", {"username": "root", "password": "a-long-local-password"})

    assert 'id="sign-in-microsoft"' in page.content.decode()
    assert 'name="password"' not in page.content.decode()
    assert refused.status_code == 403
    assert signed_in_user(client) is None
    assert authenticate(username="root", password="a-long-local-password") is None


def test_a_failed_sign_in_says_so_without_saying_why(client, fake_oidc):
    body = client.get(FAILED).content.decode()

    assert "did not succeed, or your account has no access" in body


def test_logging_out_after_an_entra_sign_in_ends_the_entra_session_too(client, fake_oidc):
    sign_in(client, fake_oidc)

    response = client.post("/admin/logout/")

    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == fake_oidc.endpoint("logout")
    assert parse_qs(location.query)["post_logout_redirect_uri"] == ["http://testserver/admin/login/"]
    assert signed_in_user(client) is None


def test_logging_out_after_a_password_sign_in_returns_to_the_login_page(client, fake_oidc):
    User.objects.create_superuser("root", password="a-long-local-password")
    client.post("/admin/login/", {"username": "root", "password": "a-long-local-password"})
    assert signed_in_user(client) is not None

    response = client.post("/admin/logout/")

    assert response["Location"] == "/admin/login/"
    assert signed_in_user(client) is None


# --- configuration -------------------------------------------------------------------------------
PORTAL_ENTRA = {"OIDC_RP_CLIENT_ID": oidc.CLIENT_ID, "OIDC_RP_CLIENT_SECRET": "a-client-secret"}
SHOW = (
    "from django.conf import settings as s; import json; print(json.dumps([s.AUTHENTICATION_BACKENDS, "
    "s.PORTAL_PASSWORD_LOGIN, s.OIDC_OP_AUTHORIZATION_ENDPOINT, s.OIDC_OP_TOKEN_ENDPOINT, "
    "s.OIDC_OP_JWKS_ENDPOINT, s.OIDC_OP_LOGOUT_ENDPOINT, s.OIDC_USE_PKCE, s.OIDC_RP_SIGN_ALGO]))"
)


def production(**overrides: str | None) -> list:
    result = run_in_production(SHOW, **overrides)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_in_production_with_entra_configured_password_sign_in_is_off_and_endpoints_are_entras():
    backends, password, authorize, token, keys, logout, pkce, algorithm = production(**PORTAL_ENTRA)

    home = "https://login.microsoftonline.com/11111111-1111-1111-1111-111111111111"
    assert backends == ["accounts.oidc.EntraBackend"] and password is False
    assert (authorize, token) == (f"{home}/oauth2/v2.0/authorize", f"{home}/oauth2/v2.0/token")
    assert (keys, logout) == (f"{home}/discovery/v2.0/keys", f"{home}/oauth2/v2.0/logout")
    assert pkce is True and algorithm == "RS256"


def test_password_sign_in_can_be_kept_on_and_the_home_directory_chosen():
    tid = oidc.HOME_TID
    backends, password, authorize, *_ = production(
        **PORTAL_ENTRA, PORTAL_PASSWORD_LOGIN="true", PORTAL_TENANT_ID=tid.upper()
    )

    assert backends == ["accounts.oidc.EntraBackend", "django.contrib.auth.backends.ModelBackend"]
    assert password is True and f"/{tid}/oauth2/v2.0/authorize" in authorize


def test_without_entra_configured_passwords_stay_the_only_sign_in():
    backends, password, *_ = production()

    assert backends == ["django.contrib.auth.backends.ModelBackend"] and password is True


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"OIDC_RP_CLIENT_ID": oidc.CLIENT_ID}, "OIDC_RP_CLIENT_SECRET"),
        ({**PORTAL_ENTRA, "PORTAL_TENANT_ID": "contoso.onmicrosoft.com"}, "PORTAL_TENANT_ID"),
        ({**PORTAL_ENTRA, "ENTRA_TENANT_ID": None, "DEBUG": "true"}, "PORTAL_TENANT_ID"),
        ({"PORTAL_PASSWORD_LOGIN": "false"}, "PORTAL_PASSWORD_LOGIN"),
        ({"PORTAL_PASSWORD_LOGIN": "sometimes"}, "PORTAL_PASSWORD_LOGIN"),
    ],
)
def test_it_refuses_a_portal_sign_in_configuration_that_cannot_work(overrides, named):
    result = load_settings(**overrides)

    assert result.returncode != 0
    assert f"ImproperlyConfigured: {named}:" in result.stderr


def test_the_deployment_checklist_passes_with_entra_sign_in_configured():
    result = run_in_production(CHECK_DEPLOY, **PORTAL_ENTRA)

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_user_page_shows_the_entra_identity_read_only(client, fake_oidc):
    sign_in(client, fake_oidc)
    user = User.objects.get()

    page = client.get(f"/admin/accounts/user/{user.pk}/change/").content.decode()
    listing = client.get("/admin/accounts/user/", {"q": user.entra_oid}).content.decode()

    assert user.entra_oid in page and 'name="entra_oid"' not in page
    assert user.username in listing
