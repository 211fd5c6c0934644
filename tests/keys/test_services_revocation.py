"""Revocation: a revoked key leaves the JWKS at once, and every worker stops signing with it."""

from __future__ import annotations

import pytest
from joserfc.errors import InvalidKeyIdError

from keys import engine
from keys.errors import KeyNotPublished, UnknownKey
from keys.models import JwksDocument, SigningKey
from keys.services import ActiveSignerCache, signing_key_revoke, signing_key_rotate
from tests.support.jwks import active_kid, header_kid, published_kids, sign_at, verify_at

pytestmark = pytest.mark.django_db


def test_revoking_the_active_key_removes_it_from_the_jwks_and_signs_with_another_at_once(
    clock, weekly_rotation
):
    signing_key_rotate()
    revoked = active_kid()
    before = sign_at(clock)

    signing_key_revoke(kid=revoked)

    assert revoked not in published_kids()
    after = sign_at(clock)
    assert header_kid(after) != revoked
    assert verify_at(after, clock)
    with pytest.raises(InvalidKeyIdError):
        verify_at(before, clock)
    key = SigningKey.objects.get(kid=revoked)
    assert (key.phase, key.revoked_at, bytes(key.store_reference)) == (engine.REVOKED, clock.now, b"")


def test_revoking_the_active_key_activates_a_published_successor_first(clock, weekly_rotation):
    signing_key_rotate()
    revoked = active_kid()
    successor = signing_key_rotate(force=True).created[0]

    signing_key_revoke(kid=revoked)

    assert active_kid() == successor
    assert published_kids() == [successor]


def test_revoking_a_pending_key_keeps_the_active_one(clock, weekly_rotation):
    signing_key_rotate()
    active = active_kid()
    pending = signing_key_rotate(force=True).created[0]

    signing_key_revoke(kid=pending)

    assert active_kid() == active
    assert published_kids() == [active]


def test_revoking_twice_is_harmless(clock, weekly_rotation):
    signing_key_rotate()
    kid = active_kid()
    signing_key_revoke(kid=kid)
    versions = JwksDocument.objects.count()

    signing_key_revoke(kid=kid)

    assert JwksDocument.objects.count() == versions


@pytest.mark.parametrize("kid", ["nope", "", "x" * 10_000, None, 42])
def test_revoking_an_unknown_kid_is_a_clear_domain_error(clock, weekly_rotation, kid):
    signing_key_rotate()

    with pytest.raises(UnknownKey, match="no signing key with kid"):
        signing_key_revoke(kid=kid)


def test_another_worker_stops_signing_with_a_revoked_key_within_one_second(
    clock, weekly_rotation, freeze_clock
):
    # Another worker's cache is not cleared by the revocation here, nor told by a notification (no
    # listener runs in this test): its own re-check alone must drop the key within the second.
    signing_key_rotate()
    revoked = active_kid()
    other_worker = ActiveSignerCache()
    ticks = freeze_clock(other_worker, at=1000.0)
    assert other_worker.get().kid == revoked

    signing_key_revoke(kid=revoked)

    ticks.advance(seconds=0.99)
    assert other_worker.get().kid != revoked


def test_a_key_already_gone_from_the_jwks_cannot_be_revoked():
    signing_key_rotate()
    key = SigningKey.objects.get(phase=engine.ACTIVE)
    SigningKey.objects.filter(pk=key.pk).update(phase=engine.RETIRED)
    with pytest.raises(KeyNotPublished, match="not published, nothing to revoke"):
        signing_key_revoke(kid=key.kid)
    assert SigningKey.objects.get(pk=key.pk).phase == engine.RETIRED
