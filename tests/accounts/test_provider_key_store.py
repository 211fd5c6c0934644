"""Entra's last known good keys in the database: a worker started while Entra is down verifies with them.

Each test's "worker" is a fresh ``JwksCache`` (nothing in memory) on the shared database store, as a
process started or recycled during an outage is; the fake Entra answers over real HTTP.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from django.db import connection

from accounts.entra import EntraTokenValidator, TokenRejected
from accounts.models import ProviderKeySet
from accounts.provider_key_store import ProviderKeySetStore
from accounts.provider_keys import JwksCache, JwksUnavailable
from tests.fake_entra import DOWN, GARBAGE, OID, TENANT_ID, public_jwk, rsa_key
from tests.support.clock import FrozenClock

pytestmark = pytest.mark.django_db

TIMEOUT = 0.5
MAX_STALE = 86_400
START = 1_800_000_000.0


@pytest.fixture(autouse=True)
def clock(freeze_clock) -> FrozenClock[float]:
    """One clock for every worker's key ages and for the lifetime rules of the tokens."""
    return freeze_clock(JwksCache, EntraTokenValidator, at=START)


def worker() -> EntraTokenValidator:
    """A validator of a worker that just started: no keys in memory, the shared store behind it."""
    cache = JwksCache(
        timeout=TIMEOUT, refresh_in_background=False, store=ProviderKeySetStore(), max_stale=MAX_STALE
    )
    return EntraTokenValidator(jwks=cache)


def stored(fake_entra) -> ProviderKeySet:
    return ProviderKeySet.objects.get(authority=fake_entra.authority, tid=TENANT_ID)


def test_a_worker_started_while_entra_is_down_verifies_with_the_stored_keys(fake_entra, clock):
    token = fake_entra.mint(now=clock.now)
    assert worker().validate(token).oid == OID
    fake_entra.mode = DOWN

    clock.advance(MAX_STALE - 1)
    token = fake_entra.mint(now=clock.now)
    assert worker().validate(token).oid == OID
    assert fake_entra.jwks_fetches() == 1  # the second worker's fetch died at discovery


def test_stored_keys_are_not_used_beyond_the_bound(fake_entra, clock):
    worker().validate(fake_entra.mint(now=clock.now))
    fake_entra.mode = DOWN

    clock.advance(MAX_STALE)
    with pytest.raises(JwksUnavailable) as caught:
        worker().validate(fake_entra.mint(now=clock.now))
    assert caught.value.retry_after == JwksCache.retry_after


def test_keys_held_in_memory_are_bounded_the_same_way(fake_entra, clock):
    validator = worker()
    validator.validate(fake_entra.mint(now=clock.now))
    fake_entra.mode = DOWN

    clock.advance(MAX_STALE - 1)
    assert validator.validate(fake_entra.mint(now=clock.now)).oid == OID
    clock.advance(1)
    with pytest.raises(JwksUnavailable):
        validator.validate(fake_entra.mint(now=clock.now))


def test_a_worker_whose_keys_aged_out_takes_fresher_ones_another_worker_stored(fake_entra, clock):
    old = worker()
    old.validate(fake_entra.mint(now=clock.now))
    clock.advance(MAX_STALE - 60)
    worker().validate(fake_entra.mint(now=clock.now))  # another worker fetched a moment ago
    fake_entra.mode = DOWN

    clock.advance(60)
    assert old.validate(fake_entra.mint(now=clock.now)).oid == OID


def test_every_fetch_updates_the_one_row_of_the_directory(fake_entra, clock):
    validator = worker()
    validator.validate(fake_entra.mint(now=clock.now))
    first_kid = fake_entra.directory(TENANT_ID).signing[0]
    assert [key["kid"] for key in stored(fake_entra).jwks["keys"]] == [first_kid]

    clock.advance(10)
    new_kid = fake_entra.rotate()
    validator.validate(fake_entra.mint(now=clock.now))  # an unknown kid: refetched

    assert ProviderKeySet.objects.count() == 1
    assert [key["kid"] for key in stored(fake_entra).jwks["keys"]] == [first_kid, new_kid]
    assert stored(fake_entra).fetched_at == datetime.fromtimestamp(clock.now, tz=UTC)


def test_the_store_holds_public_key_members_only(fake_entra, clock):
    private = rsa_key()
    numbers = private.private_numbers()
    fake_entra.directory(TENANT_ID).keys = [("kid-leaky", private)]
    leaky = public_jwk(private, "kid-leaky", d=str(numbers.d), p=str(numbers.p), x5c=["MIIC"])
    fake_entra.jwks_override = {"keys": [leaky]}

    worker().validate(fake_entra.mint(now=clock.now))

    [jwk] = stored(fake_entra).jwks["keys"]
    assert set(jwk) <= {"kty", "use", "kid", "n", "e", "issuer"}
    assert (jwk["n"], jwk["e"]) == (leaky["n"], leaky["e"])


@pytest.mark.parametrize(
    "tampered",
    [
        {"keys": [public_jwk(rsa_key(), "x")]},  # a key Entra never published: signatures fail
        {"keys": [{"kty": "oct", "kid": "{kid}", "k": "c2VjcmV0"}]},
        {"keys": [{**public_jwk(rsa_key(), "{kid}"), "alg": "HS256"}]},
        {"keys": "none"},
        ["not", "an", "object"],
        "garbage",
    ],
)
def test_stored_keys_go_through_the_rules_of_fetched_ones(fake_entra, clock, tampered):
    worker().validate(fake_entra.mint(now=clock.now))
    kid = fake_entra.directory(TENANT_ID).signing[0]
    row = stored(fake_entra)
    row.jwks = _with_kid(tampered, kid)
    row.save()
    fake_entra.mode = DOWN

    with pytest.raises((JwksUnavailable, TokenRejected)):
        worker().validate(fake_entra.mint(now=clock.now))


def test_a_small_rsa_key_in_the_store_is_refused_like_a_fetched_one(fake_entra, clock):
    worker().validate(fake_entra.mint(now=clock.now))
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - the point
    fake_entra.directory(TENANT_ID).keys = [("kid-small", small)]
    row = stored(fake_entra)
    row.jwks = {"keys": [public_jwk(small, "kid-small")]}
    row.save()
    fake_entra.mode = DOWN

    with pytest.raises(JwksUnavailable):
        worker().validate(fake_entra.mint(now=clock.now))


def test_a_stored_key_set_dated_in_the_future_cannot_stretch_its_life(fake_entra, clock):
    worker().validate(fake_entra.mint(now=clock.now))
    fake_entra.mode = DOWN
    ProviderKeySet.objects.update(fetched_at=datetime.fromtimestamp(clock.now + 3600, tz=UTC))

    with pytest.raises(JwksUnavailable):
        worker().validate(fake_entra.mint(now=clock.now))


@pytest.mark.parametrize("mode", [DOWN, GARBAGE])
def test_with_nothing_stored_an_unreachable_entra_is_unavailable(fake_entra, clock, mode):
    fake_entra.mode = mode

    with pytest.raises(JwksUnavailable):
        worker().validate(fake_entra.mint(now=clock.now))
    assert not ProviderKeySet.objects.exists()


def test_a_database_error_on_the_store_is_logged_and_the_exchange_goes_on(fake_entra, clock, caplog):
    with connection.cursor() as cursor:  # a real fault: the table is gone (rolled back after the test)
        cursor.execute("ALTER TABLE accounts_providerkeyset RENAME TO accounts_providerkeyset_gone")
    caplog.set_level(logging.WARNING, logger="accounts.provider_key_store")

    assert worker().validate(fake_entra.mint(now=clock.now)).oid == OID  # the write failed
    fake_entra.mode = DOWN
    with pytest.raises(JwksUnavailable):
        worker().validate(fake_entra.mint(now=clock.now))  # so did the read

    messages = [record.getMessage() for record in caplog.records]
    assert any("not stored" in message for message in messages), messages
    assert any("not read" in message for message in messages), messages
    with connection.cursor() as cursor:  # the test's transaction is still usable
        cursor.execute("SELECT 1")


@pytest.mark.django_db(transaction=True)  # the refresh thread's own connection commits its write
def test_a_background_refresh_stores_what_it_fetched(fake_entra, clock):
    cache = JwksCache(timeout=TIMEOUT, store=ProviderKeySetStore(), max_stale=MAX_STALE)
    validator = EntraTokenValidator(jwks=cache)
    old_kid, old_key = fake_entra.directory(TENANT_ID).signing
    validator.validate(fake_entra.mint(now=clock.now))
    new_kid = fake_entra.rotate()  # published ahead of use, as Entra does

    clock.advance(cache.refresh_after)  # due: this validation starts the refresh in the background
    validator.validate(fake_entra.mint(now=clock.now, key=old_key, header={"kid": old_kid}))
    cache.directory(authority=fake_entra.authority, tid=TENANT_ID).refresher.join(5)

    row = stored(fake_entra)
    assert new_kid in [key["kid"] for key in row.jwks["keys"]]
    assert row.fetched_at == datetime.fromtimestamp(clock.now, tz=UTC)


def _with_kid(value: object, kid: str) -> object:
    if isinstance(value, dict) and isinstance(value.get("keys"), list):
        keys = [{**jwk, "kid": jwk["kid"].format(kid=kid)} for jwk in value["keys"]]
        return {**value, "keys": keys}
    return value
