"""Rotation as auditors and downstream verifiers see it: bootstrap, the publish lead, retirement, locks."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from joserfc import jwt
from joserfc.errors import ExpiredTokenError
from joserfc.jwk import KeySet

from keys import engine
from keys.models import JwksDocument, SigningKey
from keys.selectors import JWKS_CACHE_SECONDS, signing_key_active_exists
from keys.services import _rotation_lock, active_signer_cache, rotation_policy, signing_key_rotate
from tests.support.jwks import active_kid, decoded, header_kid, published_kids, sign_at, verify_at

pytestmark = pytest.mark.django_db


def test_the_first_run_bootstraps_an_active_published_key(clock, weekly_rotation):
    result = signing_key_rotate()

    key = SigningKey.objects.get()
    assert (key.phase, key.algorithm) == (engine.ACTIVE, "ES256")
    assert result.created == result.activated == (key.kid,)
    assert result.changed
    assert published_kids() == [key.kid]
    assert signing_key_active_exists()


def test_rotation_is_idempotent(clock, weekly_rotation):
    signing_key_rotate()
    versions = JwksDocument.objects.count()

    result = signing_key_rotate()

    assert not result.changed
    assert SigningKey.objects.count() == 1
    assert JwksDocument.objects.count() == versions


def test_a_successor_is_published_for_the_lead_before_the_first_token_it_signs(clock, weekly_rotation):
    signing_key_rotate()
    old = active_kid()
    clock.advance(seconds=(weekly_rotation.rotation_interval - weekly_rotation.publish_lead).total_seconds())

    created = signing_key_rotate().created
    assert len(created) == 1
    successor = created[0]
    published_at = clock.now
    assert successor in published_kids()

    first_signed_by_successor = None
    for _ in range(200):
        clock.advance(minutes=1)
        signing_key_rotate()
        if header_kid(sign_at(clock)) == successor:
            first_signed_by_successor = clock.now
            break
        assert header_kid(sign_at(clock)) == old
        assert successor in published_kids()

    assert first_signed_by_successor is not None
    assert first_signed_by_successor - published_at >= timedelta(seconds=3600)
    # and the lead was measured from a stored JWKS version that already held the successor
    first_version = min(
        document.created_at for document in JwksDocument.objects.all() if successor in document.body
    )
    assert first_signed_by_successor - first_version >= timedelta(seconds=3600)


def test_a_token_signed_before_a_rotation_verifies_until_it_expires(clock, weekly_rotation):
    signing_key_rotate()
    old = active_kid()
    signing_key_rotate(force=True)
    clock.advance(seconds=weekly_rotation.publish_lead.total_seconds() - 1)
    token = sign_at(clock)  # the last second before the successor takes over
    expires = clock.now + timedelta(seconds=600)
    clock.advance(seconds=1 + JWKS_CACHE_SECONDS)
    assert signing_key_rotate().activated
    assert active_kid() != old

    while clock.now < expires:
        signing_key_rotate()
        assert old in published_kids()
        assert verify_at(token, clock)["sub"] == "p-1"
        clock.advance(seconds=30)

    clock.advance(seconds=weekly_rotation.retire_after.total_seconds())
    assert signing_key_rotate().retired == (old,)
    assert old not in published_kids()
    with pytest.raises(ExpiredTokenError):  # by now the token is dead anyway
        claims = decoded(token, _retired_key_set(old)).claims
        jwt.JWTClaimsRegistry(now=int(clock.now.timestamp()), leeway=60).validate(claims)


def _retired_key_set(kid: str) -> KeySet:
    key = SigningKey.objects.get(kid=kid)
    return KeySet.import_key_set({"keys": [{**key.public_jwk, "kid": kid, "alg": key.algorithm}]})


def test_a_retired_key_loses_its_private_material(clock, weekly_rotation):
    signing_key_rotate()
    old = active_kid()
    signing_key_rotate(force=True)
    clock.advance(seconds=weekly_rotation.publish_lead.total_seconds())
    signing_key_rotate()
    clock.advance(seconds=weekly_rotation.retire_after.total_seconds())
    signing_key_rotate()

    retired = SigningKey.objects.get(kid=old)
    assert retired.phase == engine.RETIRED
    assert bytes(retired.store_reference) == b""


def test_a_changed_algorithm_rotates_to_it_through_the_publish_lead(clock, weekly_rotation, settings):
    signing_key_rotate()
    settings.KEY_ALGORITHM = "PS256"

    successor = signing_key_rotate().created[0]

    assert SigningKey.objects.get(kid=successor).algorithm == "PS256"
    assert SigningKey.objects.get(kid=successor).phase == engine.PENDING


def test_a_retiring_key_outlives_the_longest_allowed_token_lifetime_whatever_the_setting(settings):
    settings.TOKEN_LIFETIME = 60
    assert rotation_policy().token_lifetime.total_seconds() == 900


@pytest.mark.django_db(transaction=True)
def test_concurrent_rotations_create_exactly_one_successor(require_postgres, clock, weekly_rotation):
    signing_key_rotate()
    clock.advance(seconds=(weekly_rotation.rotation_interval - weekly_rotation.publish_lead).total_seconds())
    workers = 6
    barrier = threading.Barrier(workers)
    results, errors = [], []

    def rotate() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(signing_key_rotate())
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=rotate) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert sum(len(result.created) for result in results) == 1
    assert SigningKey.objects.filter(phase=engine.PENDING).count() == 1
    assert SigningKey.objects.filter(phase=engine.ACTIVE).count() == 1
    versions = list(JwksDocument.objects.values_list("version", flat=True))
    assert sorted(versions) == list(range(1, len(versions) + 1))
    assert active_signer_cache.get().kid == SigningKey.objects.get(phase=engine.ACTIVE).kid


def _wait_until_a_backend_waits_for_a_lock() -> None:
    """Poll PostgreSQL (not the clock) until another session is blocked on a row lock."""
    pause = threading.Event()  # never set: wait(0.01) is a short poll interval
    for _ in range(2000):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            if cursor.fetchone()[0]:
                return
        pause.wait(0.01)
    raise AssertionError("the rotation never waited for the lock")


@pytest.mark.django_db(transaction=True)
def test_a_rotation_that_waited_for_the_lock_stamps_its_successor_after_the_wait(
    require_postgres, clock, weekly_rotation
):
    """published_at starts the publish lead: stamped before the wait, the successor would sign
    as much earlier than KEY_PUBLISH_LEAD after it actually appeared in the JWKS."""
    signing_key_rotate()
    clock.advance(seconds=(weekly_rotation.rotation_interval - weekly_rotation.publish_lead).total_seconds())
    held, release, errors = threading.Event(), threading.Event(), []

    def hold_the_lock() -> None:
        try:
            with transaction.atomic():
                _rotation_lock()
                held.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    def rotate() -> None:
        try:
            signing_key_rotate()
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    assert held.wait(timeout=10)
    rotator = threading.Thread(target=rotate)
    rotator.start()
    try:
        _wait_until_a_backend_waits_for_a_lock()
        unlocked_at = clock.advance(minutes=10)  # another worker held the lock this long
    finally:
        release.set()
        holder.join(timeout=30)
        rotator.join(timeout=60)

    assert errors == []
    successor = SigningKey.objects.get(phase=engine.PENDING)
    assert successor.published_at == unlocked_at
