"""The JWKS cache against the fake Entra over real HTTP: rollover, throttling, outages, slowness."""

from __future__ import annotations

import math
import socket
import time
import uuid

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from accounts.entra import EntraTokenValidator, TokenRejected
from accounts.provider_jwks import JwksUnusable, jwks_parse
from accounts.provider_keys import JwksCache, JwksUnavailable
from tests.fake_entra import DOWN, GARBAGE, OID, SLOW, TENANT_ID, public_jwk, rsa_key
from tests.support.clock import FrozenClock

TIMEOUT = 0.5
ATTACKER = rsa_key()


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


def forged(fake_entra, clock: FrozenClock[float]) -> str:
    """A token of the trusted directory under a random kid, signed by an attacker's key."""
    return fake_entra.mint(now=clock.now, key=ATTACKER, header={"kid": f"forged-{uuid.uuid4().hex}"})


def test_a_flood_of_unknown_kids_refetches_at_most_once_per_cooldown(fake_entra, validator, cache, clock):
    validator.validate(fake_entra.mint(now=clock.now))

    for _ in range(90):
        assert check_of(validator, forged(fake_entra, clock)) == "kid_unknown"
        clock.advance(1)

    assert cache.kid_refetch_cooldown <= 30
    assert fake_entra.jwks_fetches() == 1 + math.ceil(90 / cache.kid_refetch_cooldown)


def test_forged_kids_sent_throughout_a_rollover_keep_the_new_key_out_for_at_most_30_seconds(
    fake_entra, validator, clock
):
    validator.validate(fake_entra.mint(now=clock.now))
    for _ in range(10):  # the flood is under way before Entra rolls its key over
        assert check_of(validator, forged(fake_entra, clock)) == "kid_unknown"
        clock.advance(1)

    fake_entra.rotate(keep_old=False)
    rolled_over_at = clock.now
    while True:
        check_of(validator, forged(fake_entra, clock))  # every second, always just before the genuine user
        try:
            assert validator.validate(fake_entra.mint(now=clock.now)).oid == OID
            break
        except TokenRejected as refused:
            assert refused.check == "kid_unknown"
        assert clock.now - rolled_over_at < 120, "the new key is still kept out after two minutes"
        clock.advance(1)

    assert clock.now - rolled_over_at <= 30


def test_a_kid_missing_from_a_fresh_fetch_triggers_no_other_fetch_for_a_while(
    fake_entra, validator, cache, clock
):
    validator.validate(fake_entra.mint(now=clock.now))
    gone = fake_entra.mint(now=clock.now, key=ATTACKER, header={"kid": "gone"})
    assert check_of(validator, gone) == "kid_unknown"
    assert fake_entra.jwks_fetches() == 2

    clock.advance(cache.kid_refetch_cooldown)
    assert check_of(validator, gone) == "kid_unknown"  # remembered as absent: no fetch
    assert fake_entra.jwks_fetches() == 2
    assert check_of(validator, forged(fake_entra, clock)) == "kid_unknown"  # a new kid may fetch
    assert fake_entra.jwks_fetches() == 3

    clock.advance(cache.absent_kid_ttl)
    assert check_of(validator, gone) == "kid_unknown"
    assert fake_entra.jwks_fetches() == 4


def test_the_absent_kids_remembered_are_bounded_and_the_oldest_go_first(fake_entra, validator, cache, clock):
    cache.max_absent_kids = 5  # the class's seam, on this instance (1000 in production)
    validator.validate(fake_entra.mint(now=clock.now))
    directory = cache.directory(authority=fake_entra.authority, tid=TENANT_ID)

    kids = []
    for number in range(8):
        kids.append(f"absent-{number}")
        check_of(validator, fake_entra.mint(now=clock.now, key=ATTACKER, header={"kid": kids[-1]}))
        clock.advance(cache.kid_refetch_cooldown)

    assert list(directory.absent) == kids[-5:]


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
def test_with_nothing_cached_a_failing_entra_is_an_outage_not_a_rejection(fake_entra, validator, cache, mode):
    fake_entra.mode = mode

    with pytest.raises(JwksUnavailable) as caught:
        validator.validate(fake_entra.mint())
    assert caught.value.retry_after == cache.retry_after  # when the next fetch may be tried


def test_with_nothing_cached_a_failed_fetch_is_not_retried_at_once(fake_entra, validator, clock):
    fake_entra.mode = DOWN
    for waited in range(5):
        with pytest.raises(JwksUnavailable) as caught:
            validator.validate(fake_entra.mint(now=clock.now))
        assert caught.value.retry_after == JwksCache.retry_after - waited
        clock.advance(1)
    assert fake_entra.total_fetches == 1

    fake_entra.mode = "ok"
    clock.advance(JwksCache.retry_after - 5)
    assert validator.validate(fake_entra.mint(now=clock.now)).oid == OID


def test_a_slow_entra_is_cut_off_within_the_timeout(fake_entra, validator):
    fake_entra.mode, fake_entra.delay = SLOW, 10 * TIMEOUT
    started = time.monotonic()

    with pytest.raises(JwksUnavailable):
        validator.validate(fake_entra.mint())
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

    with pytest.raises(JwksUnavailable, match="authority's origin"):
        cache.key_get(authority=fake_entra.authority, tid=TENANT_ID, kid="any")


def test_it_refuses_an_https_jwks_uri_on_another_host(fake_entra, cache):
    fake_entra.jwks_uri = "https://attacker.example/keys"

    with pytest.raises(JwksUnavailable, match="authority's origin"):
        cache.key_get(authority=fake_entra.authority, tid=TENANT_ID, kid="any")
    assert fake_entra.total_fetches == 1  # the discovery document only


@pytest.mark.parametrize(
    "uri",
    [
        "https://127.0.0.1:{port}/keys",  # the authority's host, another port
        "http://127.0.0.1:{port}/keys",
        "https://127.0.0.1:{authority_port}/keys",  # the authority's host and port, another scheme
    ],
)
def test_it_refuses_a_jwks_uri_off_the_authority_s_origin_without_connecting(fake_entra, cache, uri):
    authority_port = fake_entra.server.server_address[1]
    with socket.create_server(("127.0.0.1", 0)) as elsewhere:
        elsewhere.settimeout(0.2)
        fake_entra.jwks_uri = uri.format(port=elsewhere.getsockname()[1], authority_port=authority_port)

        with pytest.raises(JwksUnavailable, match="authority's origin"):
            cache.key_get(authority=fake_entra.authority, tid=TENANT_ID, kid="any")
        with pytest.raises(TimeoutError):
            elsewhere.accept()  # nobody connected to the other port
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

    assert set(jwks_parse(document, max_keys=100)) == {"good"}
    with pytest.raises(JwksUnusable):
        jwks_parse({"keys": document["keys"][:-1]}, max_keys=100)
