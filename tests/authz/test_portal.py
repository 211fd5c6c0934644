"""Daily work in the portal: bulk revoke and extend of grants, as services and as admin actions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from authz.models import Grant, Role, Tenant
from authz.portal import grants_extend, grants_revoke
from tests import fake_entra as entra

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
CHANGELIST = "/admin/authz/grant/"


@pytest.fixture
def acme() -> Tenant:
    return Tenant.objects.create(slug="acme", name="Acme")


@pytest.fixture
def make_grant(acme: Tenant, viewer: Role) -> Any:
    def make(**fields: Any) -> Grant:
        return Grant.objects.create(
            tenant=acme,
            role=viewer,
            provider=entra.TENANT_ID,
            subject_type="user",
            subject_id=str(uuid.uuid4()),
            **fields,
        )

    return make


def fresh(grant: Grant) -> Grant:
    grant.refresh_from_db()
    return grant


# --- revoke ---------------------------------------------------------------------------------


def test_a_revoke_ends_the_grant_now_and_keeps_the_record(make_grant: Any, admin_user: Any) -> None:
    grant = make_grant(valid_until=NOW + timedelta(days=30))

    result = grants_revoke(grants=Grant.objects.all(), reason="left the company", by=admin_user, now=NOW)

    assert (result.changed, result.unchanged) == (1, 0)
    assert fresh(grant).valid_until == NOW
    latest = grant.history.latest()
    assert (latest.history_change_reason, latest.history_user) == ("left the company", admin_user)


def test_a_revoke_leaves_an_ended_grant_as_it_was(make_grant: Any, admin_user: Any) -> None:
    ended = NOW - timedelta(days=3)
    grant = make_grant(valid_until=ended)

    result = grants_revoke(grants=Grant.objects.all(), reason="cleanup", by=admin_user, now=NOW)

    assert (result.changed, result.unchanged) == (0, 1)
    assert fresh(grant).valid_until == ended


def test_a_revoke_of_a_grant_not_yet_started_leaves_an_empty_past_period(
    make_grant: Any, admin_user: Any
) -> None:
    grant = make_grant(valid_from=NOW + timedelta(days=1))

    grants_revoke(grants=Grant.objects.all(), reason="cancelled", by=admin_user, now=NOW)

    assert (fresh(grant).valid_from, grant.valid_until) == (None, NOW)
    assert grant.history.earliest().valid_from == NOW + timedelta(days=1)


@pytest.mark.parametrize("reason", ["", "   ", "x" * 101])
def test_a_revoke_needs_a_short_reason(make_grant: Any, admin_user: Any, reason: str) -> None:
    grant = make_grant()

    with pytest.raises(ValidationError):
        grants_revoke(grants=Grant.objects.all(), reason=reason, by=admin_user, now=NOW)
    assert fresh(grant).valid_until is None


# --- extend ---------------------------------------------------------------------------------


def test_an_extension_moves_the_end_later_only(make_grant: Any, admin_user: Any) -> None:
    soon = make_grant(valid_until=NOW + timedelta(days=2))
    later = make_grant(valid_until=NOW + timedelta(days=90))
    forever = make_grant()
    new_end = NOW + timedelta(days=30)

    result = grants_extend(
        grants=Grant.objects.all(), valid_until=new_end, reason="renewal", by=admin_user, now=NOW
    )

    assert (result.changed, result.unchanged) == (1, 2)
    assert fresh(soon).valid_until == new_end
    assert fresh(later).valid_until == NOW + timedelta(days=90)
    assert fresh(forever).valid_until is None
    assert soon.history.latest().history_change_reason == "renewal"


def test_an_extension_into_the_past_is_refused(make_grant: Any, admin_user: Any) -> None:
    make_grant(valid_until=NOW - timedelta(days=1))

    with pytest.raises(ValidationError, match="future"):
        grants_extend(grants=Grant.objects.all(), valid_until=NOW, reason="oops", by=admin_user, now=NOW)


def test_an_extension_ending_before_a_grant_starts_changes_nothing(make_grant: Any, admin_user: Any) -> None:
    soon = make_grant(valid_until=NOW + timedelta(days=2))
    make_grant(valid_from=NOW + timedelta(days=60), valid_until=NOW + timedelta(days=61))

    with pytest.raises(ValidationError, match="start after the new end"):
        grants_extend(
            grants=Grant.objects.all(),
            valid_until=NOW + timedelta(days=30),
            reason="renewal",
            by=admin_user,
            now=NOW,
        )
    assert fresh(soon).valid_until == NOW + timedelta(days=2)


# --- the admin actions ----------------------------------------------------------------------


def test_the_revoke_action_asks_for_a_reason_first(admin_client: Any, make_grant: Any) -> None:
    grant = make_grant()

    response = admin_client.post(CHANGELIST, {"action": "revoke_grants", "_selected_action": [grant.pk]})

    assert response.status_code == 200
    assert "reason" in response.context["form"].fields
    assert fresh(grant).valid_until is None


def test_the_revoke_action_without_a_reason_changes_nothing(admin_client: Any, make_grant: Any) -> None:
    grant = make_grant()

    response = admin_client.post(
        CHANGELIST, {"action": "revoke_grants", "_selected_action": [grant.pk], "apply": "1", "reason": ""}
    )

    assert response.context["form"].errors["reason"]
    assert fresh(grant).valid_until is None


def test_the_revoke_action_revokes_with_the_reason(
    admin_client: Any, admin_user: Any, make_grant: Any
) -> None:
    grant, other = make_grant(), make_grant()

    response = admin_client.post(
        CHANGELIST,
        {"action": "revoke_grants", "_selected_action": [grant.pk], "apply": "1", "reason": "ticket 7"},
    )

    assert response.status_code == 302
    assert fresh(grant).valid_until is not None
    assert fresh(other).valid_until is None
    assert (grant.history.latest().history_change_reason, grant.history.latest().history_user) == (
        "ticket 7",
        admin_user,
    )


def test_the_extend_action_sets_the_new_end(admin_client: Any, make_grant: Any) -> None:
    grant = make_grant(valid_until=datetime(2026, 1, 1, tzinfo=UTC))

    response = admin_client.post(
        CHANGELIST,
        {
            "action": "extend_grants",
            "_selected_action": [grant.pk],
            "apply": "1",
            "valid_until": "2099-06-30T09:30",
            "reason": "renewed contract",
        },
    )

    assert response.status_code == 302
    assert fresh(grant).valid_until.astimezone(UTC).date().isoformat() == "2099-06-30"


def test_the_changelist_links_to_the_grants_expiring_soon_and_the_preview(admin_client: Any) -> None:
    page = admin_client.get(CHANGELIST).content.decode()

    assert "?validity=expiring" in page
    assert "/admin/authz/grant/preview/" in page
