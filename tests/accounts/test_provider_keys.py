"""The JWKS cache against the fake Entra over real HTTP: rollover, throttling, outages, slowness."""

from __future__ import annotations

import time

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from accounts.entra import EntraTokenValidator, TokenRejected
from accounts.provider_keys import JwksCache, JwksUnavailable, _parse_jwks
from tests.fake_entra import DOWN, GARBAGE, OID, SLOW, TENANT_ID, public_jwk, rsa_key
from tests.support.clock import FrozenClock

TIMEOUT = 0.5


@pytest.fixture
def cache() -> JwksCache:
    return JwksCache(timeout=TIMEOUT)


@pytest.fixture
def validator(cache) -> EntraTokenValidator:
    return EntraTokenValidator(jwks=cache)


@pytest.fixture(autouse=True)
def clock(freeze_clock, cache, validator) -> FrozenClock[float]:
    """One clock, moved by hand, for the cache's ages and throttles and the validator's lifetime rules."""
    return freeze_clock(cache, validator, at=1_800_000_000.0)


def check_of(validator: EntraTokenValidator, token: str) -> str:
    with pytest.raises(TokenRejected) as caught:
        validator.validate(token)
    return caught.value.check


def test_it_follows_a_key_rollover_with_one_refetch(fake_entra, validator, clock):
    validator.validate(fake_entra.mint(now=clock.now))
    fake_entra.rotate(keep_old=False)

    assert validator.validate(fake_entra.mint(now=clock.now)).oid == OID
    assert fake_entra.jwks_fetches() == 2


def test_a_flood_of_unknown_kids_refetches_at_most_once_per_five_minutes(fake_entra, validator, clock):
    validator.validate(fake_entra.mint(now=clock.now))
    attacker = rsa_key()

    for number in range(50):
        token = fake_entra.mint(now=clock.now, key=attacker, header={"kid": f"forged-{number}"})
        assert check_of(validator, token) == "kid_unknown"
        clock.advance(5)  # 250 s in all: still inside one window
    assert fake_entra.jwks_fetches() == 2

    clock.advance(50)
    late = fake_entra.mint(now=clock.now, key=attacker, header={"kid": "late"})
    assert check_of(validator, late) == "kid_unknown"
    assert fake_entra.jwks_fetches() == 3


def test_a_rollover_right_after_a_flood_waits_for_the_window_or_the_age_refresh(fake_entra, validator, clock):
    validator.validate(fake_entra.mint(now=clock.now))
    check_of(validator, fake_entra.mint(now=clock.now, key=rsa_key(), header={"kid": "forged"}))
    fake_entra.rotate(keep_old=False)

    assert check_of(validator, fake_entra.mint(now=clock.now)) == "kid_unknown"
    clock.advance(300)
    assert validator.validate(fake_entra.mint(now=clock.now)).oid == OID


@pytest.mark.parametrize("mode", [DOWN, GARBAGE])
def test_cached_keys_keep_working_while_entra_fails(fake_entra, validator, cache, clock, mode):
    token = fake_entra.mint(now=clock.now)
    validator.validate(token)
    fake_entra.mode = mode

    clock.advance(cache.refresh_after + 1)  # due for a refresh, which fails in the background
    assert validator.validate(token).oid == OID
    cache.directory(authority=fake_entra.authority, tid=TENANT_ID).refresher.join(5)
    assert validator.validate(token).oid == OID
    unknown = fake_entra.mint(now=clock.now, key=rsa_key(), header={"kid": "new"})
    assert check_of(validator, unknown) == "kid_unknown"
    assert validator.validate(token).oid == OID
    assert fake_entra.jwks_fetches() == 1  # the later attempts died at discovery


@pytest.mark.parametrize("mode", [DOWN, GARBAGE])
def test_with_nothing_cached_a_failing_entra_is_a_clean_rejection(fake_entra, validator, mode):
    fake_entra.mode = mode

    assert check_of(validator, fake_entra.mint()) == "jwks_unavailable"


def test_with_nothing_cached_a_failed_fetch_is_not_retried_at_once(fake_entra, validator, clock):
    fake_entra.mode = DOWN
    for _ in range(5):
        check_of(validator, fake_entra.mint(now=clock.now))
    assert fake_entra.total_fetches == 1

    fake_entra.mode = "ok"
    clock.advance(JwksCache.retry_after)
    assert validator.validate(fake_entra.mint(now=clock.now)).oid == OID


def test_a_slow_entra_is_cut_off_within_the_timeout(fake_entra, validator):
    fake_entra.mode, fake_entra.delay = SLOW, 10 * TIMEOUT
    started = time.monotonic()

    assert check_of(validator, fake_entra.mint()) == "jwks_unavailable"
    assert time.monotonic() - started < 2 * TIMEOUT


def test_aged_keys_are_refreshed_in_the_background(fake_entra, validator, cache, clock):
    old_token = fake_entra.mint(now=clock.now)
    validator.validate(old_token)
    fake_entra.rotate()  # Entra publishes the successor before signing with it

    clock.advance(cache.refresh_after)
    validator.validate(old_token)
    cache.directory(authority=fake_entra.authority, tid=TENANT_ID).refresher.join(5)

    assert validator.validate(fake_entra.mint(now=clock.now)).oid == OID
    assert fake_entra.jwks_fetches() == 2
    assert cache.directory(authority=fake_entra.authority, tid=TENANT_ID).kid_refetch_at is None


def test_aged_keys_can_be_refreshed_in_the_request_instead(fake_entra, cache, validator, clock):
    cache.refresh_in_background = False
    validator.validate(fake_entra.mint(now=clock.now))
    fake_entra.rotate()

    clock.advance(cache.refresh_after)
    validator.validate(fake_entra.mint(now=clock.now))

    assert fake_entra.jwks_fetches() == 2
    assert cache.directory(authority=fake_entra.authority, tid=TENANT_ID).kid_refetch_at is None


def test_it_refuses_a_plain_http_jwks_uri_on_another_host(fake_entra, cache):
    fake_entra.jwks_uri = "http://198.51.100.7/keys"

    with pytest.raises(JwksUnavailable, match="authority's host"):
        cache.key_get(authority=fake_entra.authority, tid=TENANT_ID, kid="any")


def test_it_refuses_an_https_jwks_uri_on_another_host(fake_entra, cache):
    fake_entra.jwks_uri = "https://attacker.example/keys"

    with pytest.raises(JwksUnavailable, match="authority's host"):
        cache.key_get(authority=fake_entra.authority, tid=TENANT_ID, kid="any")
    assert fake_entra.total_fetches == 1  # the discovery document only


def test_a_jwks_uri_with_a_bad_port_is_unavailable_not_an_error(fake_entra, cache):
    fake_entra.jwks_uri = fake_entra.authority + ":99999/keys"

    with pytest.raises(JwksUnavailable):
        cache.key_get(authority=fake_entra.authority, tid=TENANT_ID, kid="any")


def test_it_skips_jwks_entries_that_are_not_rs256_signing_keys():
    good = public_jwk(rsa_key(), "good")
    document = {
        "keys": [
            {**public_jwk(rsa_key(), "enc"), "use": "enc"},
            {**public_jwk(rsa_key(), "ps"), "alg": "PS256"},
            {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"},
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {**good, "kid": "broken", "n": "!!"},
            public_jwk(rsa.generate_private_key(public_exponent=65537, key_size=1024), "small"),  # noqa: S505 - the point
            "not a key",
            good,
        ]
    }

    assert set(_parse_jwks(document, max_keys=100)) == {"good"}
    with pytest.raises(JwksUnavailable):
        _parse_jwks({"keys": document["keys"][:-1]}, max_keys=100)
