"""principal_get_or_create: one query when warm, one principal when first calls race."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from django.db import connection, transaction

from accounts.models import Principal
from accounts.services import principal_get_or_create, principal_id_get_or_create

TID = "11111111-1111-4111-8111-111111111111"


def guid() -> str:
    return str(uuid.uuid4())


@pytest.mark.django_db
def test_it_creates_a_principal_on_first_sight():
    oid = guid()

    principal = principal_get_or_create(provider=TID, subject=oid)

    assert (principal.provider, principal.subject) == (TID, oid)
    assert Principal.objects.count() == 1


@pytest.mark.django_db
def test_it_returns_the_same_principal_with_exactly_one_query(django_assert_num_queries):
    first = principal_get_or_create(provider=TID, subject=(oid := guid()))

    with django_assert_num_queries(1):
        again = principal_get_or_create(provider=TID, subject=oid)

    assert again.pk == first.pk


@pytest.mark.django_db
def test_the_same_object_id_in_another_directory_is_another_principal():
    oid = guid()

    assert (
        principal_get_or_create(provider=TID, subject=oid).pk
        != principal_get_or_create(provider=guid(), subject=oid).pk
    )


def in_thread(work, results: list, errors: list) -> threading.Thread:
    def run() -> None:
        try:
            results.append(work())
        except Exception as exc:  # reported by the test
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def wait_until(condition, *, within: float = 10.0) -> None:
    """Poll a condition of the database (not the clock) until it holds."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.01)


@pytest.mark.django_db(transaction=True)
def test_the_loser_of_an_insert_race_returns_the_winner_and_keeps_its_transaction(require_postgres):
    oid = guid()
    inserted, release = threading.Event(), threading.Event()
    results: list = []
    errors: list = []

    def winner() -> Principal:
        with transaction.atomic():
            principal = Principal.objects.create(provider=TID, subject=oid)
            inserted.set()
            release.wait(10)
        return principal

    def loser() -> Principal:
        with transaction.atomic():  # the caller's transaction must stay usable after the lost race
            principal = principal_get_or_create(provider=TID, subject=oid)
            assert Principal.objects.filter(pk=principal.pk).exists()
        return principal

    first = in_thread(winner, results, errors)
    assert inserted.wait(10)
    second = in_thread(loser, results, errors)
    with connection.cursor() as cursor:

        def loser_waits_on_the_unique_index() -> bool:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            )
            return cursor.fetchone()[0] == 1

        wait_until(loser_waits_on_the_unique_index)
    release.set()
    first.join(10)
    second.join(10)

    assert errors == []
    assert len({principal.pk for principal in results}) == 1
    assert Principal.objects.filter(provider=TID, subject=oid).count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_exchanges_create_one_principal(require_postgres):
    for _ in range(10):
        oid = guid()
        barrier = threading.Barrier(8)
        results: list = []
        errors: list = []

        def first_exchange(oid: str = oid, barrier: threading.Barrier = barrier) -> Principal:
            barrier.wait(10)
            return principal_get_or_create(provider=TID, subject=oid)

        threads = [in_thread(first_exchange, results, errors) for _ in range(8)]
        for thread in threads:
            thread.join(10)

        assert errors == []
        assert len({principal.pk for principal in results}) == 1
        assert Principal.objects.filter(provider=TID, subject=oid).count() == 1


@pytest.mark.django_db
def test_a_declared_providers_subject_is_kept_exactly_as_written():
    first = principal_get_or_create(provider="acme-okta", subject="00uAbC")

    assert principal_get_or_create(provider="acme-okta", subject="00uabc").pk != first.pk
    assert principal_get_or_create(provider="other-okta", subject="00uAbC").pk != first.pk
    assert principal_id_get_or_create(provider="acme-okta", subject="00uAbC") == first.pk
