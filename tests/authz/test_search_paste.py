"""Smart paste over HTTP: a staff POST with its CSRF token, answered with the add-grant form's fields."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from accounts.models import User
from authz.models import Grant, Role, Tenant
from authz.portal import tenant_administrator_add
from authz.search.portal import PASTE_MAX
from tests.support.clock import FrozenClock
from tests.support.search_cases import PROVIDER, cases_now, fresh_search, search_catalogue_load

__all__ = ["fresh_search"]

PASTE = "/admin/search/paste"
G = "2f0e3b4c-8a1d-4c5e-9f60-7b8c9d0e1f2a"
REQUEST = f"Please give {G} read access to orders in Acme until 31 March, approved by J. Doe, ticket OPS-4411"


@pytest.fixture
def catalogue(settings: Any, db: None, fresh_search: None, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.PORTAL_SEARCH_MATCHING = "lexical"
    search_catalogue_load(settings)
    from authz.admin import search_views

    monkeypatch.setattr(search_views, "clock", FrozenClock(cases_now()))


# The CSRF cookie a page would have set, and the header the page's script sends with it.
CSRF_SECRET = "k" * 32


def signed_in(username: str, *, superuser: bool) -> Client:
    client = Client(enforce_csrf_checks=True)
    maker = User.objects.create_superuser if superuser else User.objects.create_user
    client.force_login(maker(username, password="x" * 20, is_staff=True))
    client.cookies[settings.CSRF_COOKIE_NAME] = CSRF_SECRET
    return client


def post(client: Client, text: str) -> Any:
    return client.post(PASTE, {"text": text}, HTTP_X_CSRFTOKEN=CSRF_SECRET)


def test_it_proposes_the_fields_of_a_new_grant(catalogue: None) -> None:
    response = post(signed_in("root", superuser=True), REQUEST)
    assert response.status_code == 200
    viewer, acme = Role.objects.get(slug="viewer"), Tenant.objects.get(slug="acme")
    assert response.json()["fields"] == {
        "tenant": {"value": str(acme.pk), "label": "acme"},
        "role": {"value": str(viewer.pk), "label": "viewer"},
        "subject_type": "user",
        "subject_id": G,
        "reason": "OPS-4411, approved by J. Doe",
        "valid_until_0": "2027-03-31",
        "valid_until_1": "23:59:59",
    }
    assert not Grant.objects.filter(subject_id=G).exists(), "a proposal saves nothing"


def test_a_labelled_subject_brings_its_provider_and_type(catalogue: None) -> None:
    answer = post(
        signed_in("root", superuser=True), "The Warehouse staff group should adjust stock in acme"
    ).json()
    assert answer["fields"]["subject_type"] == "group"
    assert answer["fields"]["provider"] == PROVIDER
    assert answer["fields"]["role"]["label"] == "stock-keeper (acme)"


def test_what_it_cannot_use_is_returned_not_guessed(catalogue: None) -> None:
    answer = post(signed_in("root", superuser=True), f"{G} needs access to acme and globex, blorp").json()
    assert "tenant" not in answer["fields"] and "role" not in answer["fields"]
    assert any("Several tenants" in note for note in answer["notes"])
    assert "blorp" in answer["unused"]


def test_it_needs_the_csrf_token(catalogue: None) -> None:
    client = signed_in("root", superuser=True)
    assert client.post(PASTE, {"text": REQUEST}).status_code == 403


@pytest.mark.parametrize("text", ["", "   ", "x" * (PASTE_MAX + 1)])
def test_an_empty_or_oversized_paste_is_a_clean_400(catalogue: None, text: str) -> None:
    response = post(signed_in("root", superuser=True), text)
    assert response.status_code == 400
    assert "error" in response.json()


def test_only_post_is_taken(catalogue: None) -> None:
    assert signed_in("root", superuser=True).get(PASTE, {"text": REQUEST}).status_code == 405


def test_a_staff_user_who_may_not_grant_is_refused(catalogue: None) -> None:
    assert post(signed_in("nobody", superuser=False), REQUEST).status_code == 403


def test_a_tenant_admin_gets_only_their_tenants(catalogue: None) -> None:
    client = signed_in("ann", superuser=False)
    tenant_administrator_add(
        user=User.objects.get(username="ann"), tenant=Tenant.objects.get(slug="acme"), by=None
    )
    answer = post(client, "Carol Danvers should be an auditor in globex until 2027-05-01").json()
    assert set(answer["fields"]) == {"valid_until_0", "valid_until_1"}
    assert answer["unused"] == ["Carol", "Danvers", "auditor", "globex"]
    mine = post(client, f"{G} should adjust stock in acme").json()
    assert mine["fields"]["role"]["label"] == "stock-keeper (acme)"


@pytest.mark.parametrize(
    "text",
    [
        f"Please give {G} read access to orders in Acme from 9999-12-31 for two weeks",
        f"Please give {G} read access to orders in Acme from 31 December 9999 for a year",
        f"Please give {G} read access to orders in Acme for \u00b2 weeks",
    ],
)
def test_a_period_past_the_last_date_or_an_odd_digit_is_no_500(catalogue: None, text: str) -> None:
    response = post(signed_in("root", superuser=True), text)
    assert response.status_code == 200
    fields = response.json()["fields"]
    assert fields["subject_id"] == G and "valid_until_0" not in fields
