"""The search box and its JSON over HTTP: who may ask, what a bad question gets, where answers are listed."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import User
from authz.models import Grant, Permission, Role, Tenant
from authz.search.catalogue import searchable_get
from authz.search.portal import search_interpret
from tests.support.search_cases import PROVIDER, acme_administrator, fresh_search, search_catalogue_load

__all__ = ["fresh_search"]

INTERPRET = "/admin/search/interpret"
SEARCH = "/admin/search/"
BOB = "b0b0b0b0-0000-4000-8000-000000000001"
CAROL = "ca201000-0000-4000-8000-000000000003"


@pytest.fixture
def catalogue(settings: Any, db: None, fresh_search: None) -> None:
    settings.PORTAL_SEARCH_MATCHING = "lexical"  # the model's own tests are in test_search_accuracy
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    search_catalogue_load(settings)


@pytest.fixture
def root(catalogue: None) -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="x" * 20))
    return client


@pytest.fixture
def ann(catalogue: None) -> Client:
    """A tenant administrator of acme only."""
    user = acme_administrator("ann", password="x" * 20)
    client = Client()
    client.force_login(user)
    return client


def ask(client: Client, question: str) -> dict[str, Any]:
    response = client.get(INTERPRET, {"q": question})
    assert response.status_code == 200, response.content
    return response.json()


def test_it_serves_the_interpretation_as_json(root: Client) -> None:
    answer = ask(root, "who can approve orders in acme")
    assert answer == {
        "target": "grants",
        "filters": {"tenant": ["acme"], "permission": ["orders.approve"]},
        "unmatched": [],
        "mode": "lexical",
    }


@pytest.mark.parametrize("path", [INTERPRET + "?q=roles", SEARCH + "?q=roles"])
def test_it_sends_anyone_without_a_staff_session_to_the_login_page(catalogue: None, path: str) -> None:
    anonymous = Client()
    response = anonymous.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    member = Client()
    member.force_login(User.objects.create_user("member", password="x" * 20))
    assert member.get(path)["Location"].startswith("/admin/login/")


@pytest.mark.parametrize("query", [{}, {"q": ""}, {"q": "   "}, {"q": "x" * 301}])
def test_a_missing_or_oversized_question_is_a_clean_400(root: Client, query: dict[str, str]) -> None:
    response = root.get(INTERPRET, query)
    assert response.status_code == 400
    assert "error" in response.json()


def test_an_oversized_question_to_the_search_page_is_a_400(root: Client) -> None:
    assert root.get(SEARCH, {"q": "x" * 301}).status_code == 400
    assert root.get(SEARCH, {"target": "grants", "tenant": "a" * 301}).status_code == 400


def test_only_get_reads_the_interpretation(root: Client) -> None:
    assert root.post(INTERPRET, {"q": "roles"}).status_code == 405


def test_a_tenant_admin_never_learns_another_tenant_through_search(ann: Client) -> None:
    for question, words in [
        ("who can approve orders in globex", ["globex"]),
        ("grants in globx", ["globx"]),  # no close spelling of a tenant they cannot see
        ("carol's access", ["carol's"]),  # the label of a subject granted only in globex
        ("auditors", ["auditors"]),  # globex's own role
        ("roles of hooli", ["hooli"]),
    ]:
        answer = ask(ann, question)
        assert answer["unmatched"] == words, question
        text = json.dumps(answer)
        for secret in ("Globex", CAROL, "Danvers", "initech", "umbrella", 'auditor"'):
            assert secret not in text, (question, secret)
    assert ask(ann, "stock keepers in acme")["filters"] == {"tenant": ["acme"], "role": ["stock-keeper"]}
    assert ask(ann, "bob's access")["filters"] == {"subject": [BOB]}
    assert ask(ann, "principals")["target"] == "grants", "principals are the platform admins' alone"


def test_a_tenant_admins_chips_cannot_name_another_tenant(ann: Client) -> None:
    response = ann.get(SEARCH, {"target": "grants", "tenant": "acme,globex", "role": "auditor"})
    params = parse_qs(urlsplit(response["Location"]).query)
    acme = Tenant.objects.get(slug="acme")
    assert params["tenant__id__exact"] == [str(acme.pk)]
    listed = ann.get(response["Location"])
    assert [mark for mark in ("globex", "auditor") if f'search-unmatched-word">{mark}' in listed.text] == [
        "globex",
        "auditor",
    ]


def test_the_search_lists_the_grants_asked_for_with_chips_and_words_not_understood(root: Client) -> None:
    response = root.get(SEARCH, {"q": "who can approve orders in acme please xyzzy"})
    assert response.status_code == 302
    params = parse_qs(urlsplit(response["Location"]).query)
    approvers = Role.objects.filter(permissions__code="orders.approve")
    assert params == {
        "tenant__id__exact": [str(Tenant.objects.get(slug="acme").pk)],
        "role__id__exact": [str(approvers.get().pk)],
    }
    page = root.get(response["Location"])
    assert page.status_code == 200
    listed = list(page.context["cl"].result_list)
    assert [(grant.subject_id, grant.role.slug) for grant in listed] == [(BOB, "approver")]
    assert 'name="permission" value="orders.approve"' in page.text
    assert 'name="tenant" value="acme"' in page.text
    assert 'search-unmatched-word">xyzzy<' in page.text
    assert 'value="who can approve orders in acme please xyzzy"' in page.text


def test_removing_a_chip_searches_again_without_that_filter(root: Client) -> None:
    listed = root.get(root.get(SEARCH, {"q": "who can approve orders in acme"})["Location"])
    chips = {chip["name"]: chip for chip in listed.context["request"].session["portal_search"]["chips"]}
    again = root.get(chips["tenant"]["remove"])
    assert set(parse_qs(urlsplit(again["Location"]).query)) == {"role__id__exact"}


def test_a_chip_edited_to_another_value_searches_with_it(root: Client) -> None:
    response = root.get(
        SEARCH, {"target": "grants", "tenant": "globex", "validity": "expiring", "within_days": "30"}
    )
    params = parse_qs(urlsplit(response["Location"]).query)
    assert params["tenant__id__exact"] == [str(Tenant.objects.get(slug="globex").pk)]
    assert params["validity"] == ["active"] and "valid_until__lte" in params


def test_grants_expiring_within_some_days_are_those_ending_by_then(root: Client) -> None:
    role, tenant = Role.objects.get(slug="viewer"), Tenant.objects.get(slug="hooli")
    now = timezone.now()
    for n, days in enumerate((3, 20, 40)):
        Grant.objects.create(
            tenant=tenant,
            role=role,
            subject_type="user",
            provider=PROVIDER,
            subject_id=f"00000000-0000-4000-8000-{n:012d}",
            valid_until=now + timedelta(days=days),
        )
    page = root.get(root.get(SEARCH, {"q": "grants in hooli expiring within 30 days"})["Location"])
    assert sorted(g.subject_id[-1] for g in page.context["cl"].result_list) == ["0", "1"]


def test_other_lists_are_reached_with_their_own_filters_and_a_message(root: Client) -> None:
    response = root.get(SEARCH, {"q": "suspended tenants"})
    assert response["Location"] == "/admin/authz/tenant/?status__exact=suspended"
    page = root.get(response["Location"])
    assert sorted(t.slug for t in page.context["cl"].result_list) == ["hooli", "initech"]
    assert "Search understood tenant status: suspended." in page.text
    roles = root.get(root.get(SEARCH, {"q": "roles that can export reports"})["Location"])
    assert [r.slug for r in roles.context["cl"].result_list] == ["analyst"]


def test_without_the_model_it_matches_by_spelling_and_says_so(root: Client) -> None:
    assert ask(root, "roles")["mode"] == "lexical"
    page = root.get(root.get(SEARCH, {"q": "grants in acme"})["Location"])
    assert "by spelling only" in page.text


def test_the_catalogue_is_read_again_only_when_it_changes(
    catalogue: None, django_assert_num_queries: Any
) -> None:
    now = timezone.now()
    assert search_interpret(tenant_ids=None, question="who can frobnicate", now=now)["unmatched"] == [
        "frobnicate"
    ]
    with django_assert_num_queries(1):  # the fingerprint alone: the matcher is kept
        search_interpret(tenant_ids=None, question="who can frobnicate", now=now)
    Permission.objects.create(code="widgets.frobnicate", description="Frobnicate widgets")
    answer = search_interpret(tenant_ids=None, question="who can frobnicate", now=now)
    assert answer["filters"] == {"permission": ["widgets.frobnicate"]}


def test_a_role_given_a_permission_is_found_by_it_at_once(catalogue: None) -> None:
    first = searchable_get(tenant_ids=None)
    Role.objects.get(slug="viewer").permissions.add(Permission.objects.get(code="orders.delete"))
    assert searchable_get(tenant_ids=None) is not first


@pytest.mark.parametrize(
    "question",
    [
        "grants expiring in \u00b2 days",  # a superscript two: str.isdigit() says yes, int() says no
        "grants ending within \u2460 weeks",  # a circled one, likewise
        "grants expiring in \u0663 days",  # an Arabic-Indic three, which int() reads
    ],
)
def test_digits_int_cannot_read_never_make_a_500(root: Client, question: str) -> None:
    assert ask(root, question)["target"] == "grants"
    assert root.get(SEARCH, {"q": question}).status_code == 302


@pytest.mark.parametrize("days", ["\u00b2", "\u2460", "\u0663"])
def test_a_chip_with_digits_int_cannot_read_is_not_understood_not_a_500(root: Client, days: str) -> None:
    response = root.get(SEARCH, {"target": "grants", "validity": "expiring", "within_days": days})
    assert response.status_code == 302
    params = parse_qs(urlsplit(response["Location"]).query)
    assert params["validity"] == ["expiring"] and "valid_until__lte" not in params


def test_a_staff_user_who_administers_no_tenant_may_not_search(catalogue: None) -> None:
    """A former tenant administrator (staff, no tenant left) sees no catalogue page: nor through search."""
    client = Client()
    client.force_login(User.objects.create_user("former", password="x" * 20, is_staff=True))
    assert client.get(INTERPRET, {"q": "who can approve orders"}).status_code == 403
    assert client.get(SEARCH, {"q": "who can approve orders"}).status_code == 403
    assert client.get(SEARCH, {"target": "grants", "permission": "orders.approve"}).status_code == 403
    home = client.get("/admin/")
    assert home.status_code == 200 and 'id="portal-search-q"' not in home.text
    ann = acme_administrator("ann", password="x" * 20)
    client.force_login(ann)
    assert 'id="portal-search-q"' in client.get("/admin/").text
