"""Through a whole rotation with each vault option, every token signed at any moment verifies against
the JWKS a downstream service holds at that moment, until it expires: zero failures."""

from __future__ import annotations

import pytest

from keys import engine
from keys.models import SigningKey
from keys.services import key_caches_clear, signing_key_rotate
from tests.support.jwks import sign_at, verify_at

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("option", ["key_vault", "wrapped_keys"])
def test_every_token_verifies_through_a_rotation(request, option, clock, weekly_rotation):
    request.getfixturevalue(option)
    signing_key_rotate()
    first = SigningKey.objects.get(phase=engine.ACTIVE).kid
    live: list[str] = []
    failures = []
    step_seconds = 120  # tokens live 600 s; the successor signs an hour after it is published

    for moment in range(60):
        if moment == 3:
            signing_key_rotate(force=True)  # a successor is published, not signing yet
        clock.advance(seconds=step_seconds)
        signing_key_rotate()  # the beat: activates the successor, later retires the old key
        key_caches_clear()
        live.append(sign_at(clock))
        live = live[-4:]  # tokens issued within the last 360 s: none has expired
        for token in live:
            try:
                verify_at(token, clock)
            except Exception as exc:  # every failure is collected, none may happen
                failures.append((moment, type(exc).__name__))

    assert failures == []
    assert SigningKey.objects.get(phase=engine.ACTIVE).kid != first
    assert SigningKey.objects.get(kid=first).phase == engine.RETIRED
