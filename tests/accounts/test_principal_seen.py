"""principal_seen: the last exchange of a principal, written at most once per few minutes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from accounts.models import Principal
from accounts.services import PrincipalSeenMemo, principal_seen, principal_seen_memo

pytestmark = pytest.mark.django_db

NOON = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def fresh_memo() -> Iterator[None]:
    principal_seen_memo.clear()
    yield
    principal_seen_memo.clear()


@pytest.fixture
def principal() -> Principal:
    return Principal.objects.create(provider=str(uuid.uuid4()), subject=str(uuid.uuid4()))


def seen_at(principal: Principal) -> datetime | None:
    principal.refresh_from_db()
    return principal.last_seen_at


def test_it_records_the_first_exchange(principal: Principal) -> None:
    assert principal_seen(principal_id=principal.id, now=NOON)

    assert seen_at(principal) == NOON


def test_it_makes_no_query_within_the_interval(principal: Principal, django_assert_num_queries) -> None:
    principal_seen(principal_id=principal.id, now=NOON)

    with django_assert_num_queries(0):
        assert not principal_seen(principal_id=principal.id, now=NOON + timedelta(minutes=4))
    assert seen_at(principal) == NOON


def test_it_writes_again_once_the_interval_has_passed(
    principal: Principal, django_assert_num_queries
) -> None:
    principal_seen(principal_id=principal.id, now=NOON)
    later = NOON + PrincipalSeenMemo.interval

    with django_assert_num_queries(1):
        assert principal_seen(principal_id=principal.id, now=later)
    assert seen_at(principal) == later


def test_another_workers_fresh_write_is_not_repeated(principal: Principal) -> None:
    """A worker whose memo knows nothing still leaves a row written within the interval alone."""
    Principal.objects.filter(pk=principal.pk).update(last_seen_at=NOON)

    assert not principal_seen(principal_id=principal.id, now=NOON + timedelta(minutes=1))
    assert seen_at(principal) == NOON


def test_an_unknown_principal_writes_nothing(principal: Principal) -> None:
    assert not principal_seen(principal_id=uuid.uuid4(), now=NOON)
    assert seen_at(principal) is None


def test_the_memo_stays_bounded(principal: Principal) -> None:
    memo = PrincipalSeenMemo()
    memo.max_entries = 3
    for minute in range(5):
        memo.mark(str(uuid.uuid4()), NOON + timedelta(minutes=minute))

    assert len(memo._written) <= 3
