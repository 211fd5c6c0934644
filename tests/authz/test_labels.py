"""Labels of users and groups: what a label may hold, whose labels a portal user reads and writes,
and labels beside ids in the grant and principal lists (searchable there).

Forbidden writes are posted straight to the pages, as a hostile tenant administrator would.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from accounts.models import Principal, User
from authz.admin.labels import NOT_YOURS
from authz.labels import subject_label_writable, subject_labels_in_scope
from authz.models import Grant, Role, SubjectLabel, Tenant, label_normalise
from tests.support.portal import errors_of, guid, url

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing", "one_provider")]

PROVIDER = "11111111-1111-4111-8111-111111111111"
OTHER = "22222222-2222-4222-8222-222222222222"


@pytest.fixture
def one_provider(settings: Any) -> None:
    settings.ENTRA_TENANT_ID = [PROVIDER]


def granted(tenant: Tenant, role: Role, subject_id: str, subject_type: str = "user") -> Grant:
    return Grant.objects.create(
        tenant=tenant, role=role, subject_type=subject_type, provider=PROVIDER, subject_id=subject_id
    )


def labelled(subject_id: str, label: str, subject_type: str = "user") -> SubjectLabel:
    return SubjectLabel.objects.create(
        provider=PROVIDER, subject_type=subject_type, subject_id=subject_id, label=label
    )


@pytest.fixture
def shared_and_theirs(acme: Tenant, globex: Tenant, viewer: Role) -> tuple[str, str]:
    """A user granted in acme and in globex, and a user granted in globex only."""
    shared, theirs = guid(), guid()
    granted(acme, viewer, shared)
    granted(globex, viewer, shared)
    granted(globex, viewer, theirs)
    return shared, theirs


def label_form(subject_id: str, label: str = "Finance approvers", **extra: str) -> dict[str, str]:
    return {"provider": PROVIDER, "subject_type": "user", "subject_id": subject_id, "label": label, **extra}


# --- what a label may hold --------------------------------------------------------------------


def test_a_label_is_kept_without_surrounding_spaces() -> None:
    assert label_normalise("  Finance approvers (EMEA) ") == "Finance approvers (EMEA)"
    assert label_normalise("Équipe финансы 財務") == "Équipe финансы 財務"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "x" * 101,
        "Bob\nAdmin",
        "tab\there",
        "nul\x00",
        "rtl\u202eoverride",
        "zero\u200bwidth",
        "line\u2028sep",
    ],
)
def test_a_label_refuses_empty_long_and_invisible_text(text: str) -> None:
    with pytest.raises(ValueError):
        label_normalise(text)


def test_a_label_names_an_entra_subject_by_its_lower_case_id() -> None:
    label = SubjectLabel(
        provider=PROVIDER,
        subject_type="group",
        subject_id=" 2F0E3B4C-8A1D-4C5E-9F60-7B8C9D0E1F2A ",
        label=" Ops ",
    )
    label.full_clean()
    assert (label.subject_id, label.label) == ("2f0e3b4c-8a1d-4c5e-9f60-7b8c9d0e1f2a", "Ops")

    label.subject_id = "not-a-guid"
    with pytest.raises(ValidationError) as refused:
        label.full_clean()
    assert "subject_id" in refused.value.message_dict


def test_one_label_per_subject_of_a_provider() -> None:
    subject_id = guid()
    labelled(subject_id, "First")
    SubjectLabel.objects.create(
        provider=OTHER, subject_type="user", subject_id=subject_id, label="Other directory"
    )
    SubjectLabel.objects.create(
        provider=PROVIDER, subject_type="group", subject_id=subject_id, label="A group"
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        labelled(subject_id, "Second")


def test_an_empty_label_is_refused_by_the_database_too() -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        labelled(guid(), "")


# --- whose labels a portal user reads and writes ------------------------------------------------


def test_a_tenant_administrator_reads_the_labels_of_subjects_granted_in_their_tenants(
    acme: Tenant, globex: Tenant, viewer: Role
) -> None:
    ours, theirs, nobodys = guid(), guid(), guid()
    granted(acme, viewer, ours)
    granted(globex, viewer, theirs)
    for subject_id in (ours, theirs, nobodys):
        labelled(subject_id, f"label of {subject_id}")
    # The same id from another provider is another person: its label is not acme's to read.
    SubjectLabel.objects.create(provider=OTHER, subject_type="user", subject_id=ours, label="someone else")

    visible = subject_labels_in_scope(tenant_ids=frozenset({acme.pk}))

    assert [label.subject_id for label in visible] == [ours]
    assert subject_labels_in_scope(tenant_ids=None).count() == 4
    assert not subject_labels_in_scope(tenant_ids=frozenset()).exists()


def test_a_tenant_administrator_labels_only_subjects_whose_grants_are_all_theirs(
    acme: Tenant, globex: Tenant, viewer: Role
) -> None:
    ours, shared, theirs = guid(), guid(), guid()
    granted(acme, viewer, ours)
    granted(acme, viewer, shared)
    granted(globex, viewer, shared)
    granted(globex, viewer, theirs)
    acme_only = frozenset({acme.pk})

    def writable(subject_id: str, tenant_ids: frozenset[int] | None = acme_only) -> bool:
        return subject_label_writable(tenant_ids=tenant_ids, subject=(PROVIDER, "user", subject_id))

    assert writable(ours)
    assert not writable(shared)
    assert not writable(theirs)
    assert not writable(guid())
    assert writable(shared, frozenset({acme.pk, globex.pk}))
    assert writable(guid(), None)


def test_a_tenant_administrator_adds_a_label_to_their_user(
    alice_client: Any, acme: Tenant, viewer: Role, alice: User
) -> None:
    ours = guid()
    granted(acme, viewer, ours)

    response = alice_client.post(url("subjectlabel", "add"), label_form(ours.upper(), " Finance approvers "))

    assert response.status_code == 302
    label = SubjectLabel.objects.get()
    assert (label.subject_id, label.label) == (ours, "Finance approvers")
    assert label.history.get().history_user == alice


def test_a_tenant_administrator_cannot_label_anyone_else_nor_learn_who_is_labelled(
    alice_client: Any, shared_and_theirs: tuple[str, str]
) -> None:
    shared, theirs = shared_and_theirs
    labelled(theirs, "Globex contractor")

    for subject_id in (shared, theirs, guid()):
        response = alice_client.post(url("subjectlabel", "add"), label_form(subject_id))
        assert errors_of(response) == NOT_YOURS
    assert SubjectLabel.objects.count() == 1


def test_a_tenant_administrator_never_opens_nor_changes_another_tenants_label(
    alice_client: Any, shared_and_theirs: tuple[str, str]
) -> None:
    shared, theirs = shared_and_theirs
    readable = labelled(shared, "Shared approvers")
    hidden = labelled(theirs, "Globex contractor")

    page = alice_client.get(url("subjectlabel", "changelist"))
    assert page.status_code == 200
    assert "Shared approvers" in page.text and "Globex contractor" not in page.text
    assert alice_client.get(url("subjectlabel", "change", hidden.pk)).status_code == 403
    assert alice_client.get(url("subjectlabel", "history", hidden.pk)).status_code == 403
    # Shared with globex: readable, not writable.
    shown = alice_client.get(url("subjectlabel", "change", readable.pk))
    assert shown.status_code == 200 and not shown.context["has_change_permission"]
    assert (
        alice_client.post(url("subjectlabel", "change", readable.pk), {"label": "Renamed"}).status_code == 403
    )
    assert alice_client.post(url("subjectlabel", "delete", readable.pk), {"post": "yes"}).status_code == 403
    bulk = {"action": "delete_selected", "_selected_action": [readable.pk], "post": "yes"}
    alice_client.post(url("subjectlabel", "changelist"), bulk)
    assert sorted(SubjectLabel.objects.values_list("label", flat=True)) == [
        "Globex contractor",
        "Shared approvers",
    ]


def test_a_saved_labels_subject_cannot_be_moved(admin_client: Any, acme: Tenant, viewer: Role) -> None:
    label = labelled(guid(), "Ops")
    elsewhere = guid()

    admin_client.post(url("subjectlabel", "change", label.pk), label_form(elsewhere, "Ops team"))

    label.refresh_from_db()
    assert label.label == "Ops team" and label.subject_id != elsewhere


# --- labels beside ids, and found by search ------------------------------------------------------


def test_the_grant_list_shows_labels_and_finds_grants_by_them(
    admin_client: Any, acme: Tenant, viewer: Role
) -> None:
    finance, ops = guid(), guid()
    granted(acme, viewer, finance)
    granted(acme, viewer, ops, subject_type="group")
    labelled(finance, "Finance approvers")
    labelled(ops, "Ops on call", subject_type="group")

    page = admin_client.get(url("grant", "changelist"))
    assert "Finance approvers" in page.text and "Ops on call" in page.text

    found = admin_client.get(url("grant", "changelist"), {"q": "finance approv"})
    assert [grant.subject_id for grant in found.context["cl"].result_list] == [finance]


def test_a_label_is_shown_as_text_never_as_markup(admin_client: Any, acme: Tenant, viewer: Role) -> None:
    subject_id = guid()
    granted(acme, viewer, subject_id)
    labelled(subject_id, '<img src=x onerror="alert(1)">')

    for page in (url("grant", "changelist"), url("subjectlabel", "changelist"), "/admin/"):
        text = admin_client.get(page).text
        assert "<img src=x" not in text and "&lt;img src=x" in text, page


@pytest.mark.parametrize(
    ("term", "found"),
    [
        ("finance acme", ["acme"]),  # each word matches a label or a field, as Django's search does
        ("approvers globex", ["globex"]),
        ('"finance approvers"', ["acme", "globex"]),
        ('"approvers finance"', []),
        ("finance initech", []),
    ],
)
def test_a_search_mixes_label_words_with_the_lists_own_fields(
    admin_client: Any, acme: Tenant, globex: Tenant, viewer: Role, term: str, found: list[str]
) -> None:
    finance = guid()
    granted(acme, viewer, finance)
    granted(globex, viewer, finance)
    granted(acme, viewer, guid())
    labelled(finance, "Finance approvers")

    page = admin_client.get(url("grant", "changelist"), {"q": term})

    assert sorted(grant.tenant.slug for grant in page.context["cl"].result_list) == found


def test_a_tenant_administrators_search_by_label_stays_in_their_tenants(
    alice_client: Any, acme: Tenant, globex: Tenant, viewer: Role
) -> None:
    theirs = guid()
    granted(globex, viewer, theirs)
    labelled(theirs, "Globex contractor")

    found = alice_client.get(url("grant", "changelist"), {"q": "contractor"})

    assert list(found.context["cl"].result_list) == []
    assert "Globex contractor" not in found.text


def test_the_grant_form_shows_the_label_or_offers_to_add_one(
    admin_client: Any, acme: Tenant, viewer: Role
) -> None:
    named, unnamed = granted(acme, viewer, guid()), granted(acme, viewer, guid())
    labelled(named.subject_id, "Finance approvers")

    assert "Finance approvers" in admin_client.get(url("grant", "change", named.pk)).text
    offer = admin_client.get(url("grant", "change", unnamed.pk)).text
    assert "Label this user" in offer and f"subject_id={unnamed.subject_id}" in offer


def test_the_principals_list_shows_labels_and_finds_principals_by_them(admin_client: Any) -> None:
    bob = Principal.objects.create(provider=PROVIDER, subject=guid())
    Principal.objects.create(provider=PROVIDER, subject=guid())
    labelled(bob.subject, "Bob (ops)")
    principals = "/admin/accounts/principal/"

    assert "Bob (ops)" in admin_client.get(principals).text
    found = admin_client.get(principals, {"q": "bob"})
    assert [principal.pk for principal in found.context["cl"].result_list] == [bob.pk]
