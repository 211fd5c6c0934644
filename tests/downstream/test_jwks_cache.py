"""The kit's JWKS cache against a fake issuer over real HTTP: discovery, freshness, revalidation,
degradation, the unknown-kid cooldown, the deadline, threads and the event loop."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest

from issuer_verify import InvalidToken, JwksCache, TokenVerifier
from tests.support.fake_issuer import DOWN, GARBAGE, SLOW, IssuerKey, b64url


def reason_of(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(InvalidToken) as caught:
        verifier.verify(token)
    return caught.value.reason


@pytest.fixture
def clock(freeze_clock):
    """The cache's clock, frozen; the verifier's wall clock stays real (tokens are minted now)."""
    return freeze_clock(JwksCache, at=10_000.0)


# --- discovery ---------------------------------------------------------------------------------
def test_keys_are_found_through_the_metadata_and_not_fetched_again_while_fresh(fake_issuer, verifier):
    for _ in range(50):
        verifier.verify(fake_issuer.mint())
    assert (fake_issuer.metadata_fetches, fake_issuer.jwks_fetches) == (1, 1)
    assert verifier.jwks.jwks_uri == f"{fake_issuer.url}/.well-known/jwks.json"


def test_a_configured_jwks_uri_is_used_without_the_metadata(fake_issuer, make_verifier):
    verifier = make_verifier(jwks_uri=f"{fake_issuer.url}/.well-known/jwks.json")
    verifier.verify(fake_issuer.mint())
    assert (fake_issuer.metadata_fetches, fake_issuer.jwks_fetches) == (0, 1)


def test_metadata_that_names_another_issuer_gives_no_keys(fake_issuer, verifier):
    fake_issuer.metadata_issuer = "https://attacker.example.com"
    assert reason_of(verifier, fake_issuer.mint()) == "jwks_unavailable"
    assert fake_issuer.jwks_fetches == 0


@pytest.mark.parametrize(
    "jwks_uri", ["http://keys.example.com/jwks.json", "file:///etc/passwd", "/jwks.json", 7]
)
def test_a_jwks_uri_from_the_metadata_must_be_https_or_loopback(fake_issuer, verifier, jwks_uri):
    fake_issuer.jwks_uri = jwks_uri
    assert reason_of(verifier, fake_issuer.mint()) == "jwks_unavailable"


# --- freshness and revalidation ------------------------------------------------------------------
def test_max_age_decides_when_the_keys_are_revalidated_with_their_etag(fake_issuer, verifier, clock):
    fake_issuer.cache_control = "public, max-age=120"
    token = fake_issuer.mint()
    verifier.verify(token)
    clock.advance(119)
    verifier.verify(token)
    assert fake_issuer.jwks_fetches == 1

    clock.advance(1)
    verifier.verify(token)
    assert fake_issuer.jwks_fetches == 2
    etag = fake_issuer.if_none_match[1]
    assert fake_issuer.if_none_match == [None, etag] and etag.startswith('"')

    clock.advance(60)  # the 304 renewed the keys for another max-age
    verifier.verify(token)
    assert fake_issuer.jwks_fetches == 2


@pytest.mark.parametrize(
    ("headers", "fresh_for"),
    [
        ({"cache_control": "max-age=5"}, 60),  # raised to min_cache_age
        ({"cache_control": "public, max-age=999999"}, 3600),  # lowered to max_cache_age
        ({"cache_control": "no-store"}, 60),
        ({"cache_control": None}, 60),
        ({"cache_control": "max-age=900", "extra_headers": {"Age": "300"}}, 600),
        ({"cache_control": 'max-age="600"'}, 600),
        ({"cache_control": "max-age=abc"}, 60),
    ],
)
def test_freshness_is_max_age_less_age_within_the_bounds(fake_issuer, verifier, clock, headers, fresh_for):
    fake_issuer.cache_control = headers["cache_control"]
    fake_issuer.extra_headers = headers.get("extra_headers", {})
    token = fake_issuer.mint()
    verifier.verify(token)
    clock.advance(fresh_for - 0.5)
    verifier.verify(token)
    assert fake_issuer.jwks_fetches == 1
    clock.advance(1)
    verifier.verify(token)
    assert fake_issuer.jwks_fetches == 2


def test_the_bounds_are_the_services_to_choose(fake_issuer, make_verifier, clock):
    verifier = make_verifier(min_cache_age=1, max_cache_age=2)
    token = fake_issuer.mint()
    verifier.verify(token)
    clock.advance(2)
    verifier.verify(token)
    assert fake_issuer.jwks_fetches == 2


def test_a_key_removed_from_the_jwks_stops_verifying_once_the_cache_is_revalidated(
    fake_issuer, make_verifier, clock
):
    verifier = make_verifier(max_cache_age=60)
    revoked = fake_issuer.signing
    token = fake_issuer.mint()
    verifier.verify(token)
    fake_issuer.unpublish(revoked)
    verifier.verify(token)  # fresh: the cache has not looked yet
    clock.advance(60)
    assert reason_of(verifier, token) == "kid_unknown"


# --- degradation ---------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", [DOWN, GARBAGE])
def test_the_last_good_keys_stay_in_use_when_a_refresh_fails(fake_issuer, verifier, clock, mode):
    token = fake_issuer.mint()
    verifier.verify(token)
    fake_issuer.mode = mode
    clock.advance(901)
    for _ in range(20):
        assert verifier.verify(token).tenant == "acme"
    assert fake_issuer.jwks_fetches == 2  # one failed attempt, then a pause before the next

    clock.advance(JwksCache.retry_after)
    verifier.verify(token)
    assert fake_issuer.jwks_fetches == 3


def test_a_jwks_with_no_usable_key_does_not_replace_the_good_one(fake_issuer, verifier, clock):
    token = fake_issuer.mint()
    verifier.verify(token)
    fake_issuer.jwks_body = json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "x"}]}).encode()
    clock.advance(901)
    assert verifier.verify(token).tenant == "acme"
    assert fake_issuer.jwks_fetches == 2


def test_with_nothing_cached_and_the_issuer_down_tokens_are_refused_without_hammering_it(
    fake_issuer, verifier, clock
):
    fake_issuer.mode = DOWN
    token = fake_issuer.mint()
    for _ in range(10):
        assert reason_of(verifier, token) == "jwks_unavailable"
    assert fake_issuer.metadata_fetches == 1

    fake_issuer.mode = "ok"
    clock.advance(JwksCache.retry_after)
    assert verifier.verify(token).tenant == "acme"


def test_keys_unconfirmed_for_longer_than_stale_if_error_are_dropped(fake_issuer, make_verifier, clock):
    verifier = make_verifier(stale_if_error=7200)
    token = fake_issuer.mint()
    verifier.verify(token)
    fake_issuer.mode = DOWN
    clock.advance(7200)
    assert verifier.verify(token).tenant == "acme"
    clock.advance(JwksCache.retry_after + 1)
    assert reason_of(verifier, token) == "jwks_unavailable"


def test_every_fetch_has_a_total_deadline(fake_issuer, make_verifier):
    verifier = make_verifier(fetch_timeout=0.5)
    fake_issuer.mode, fake_issuer.delay = SLOW, 10
    started = time.monotonic()
    assert reason_of(verifier, fake_issuer.mint()) == "jwks_unavailable"
    assert time.monotonic() - started < 2


def test_the_default_deadline_is_three_seconds(verifier):
    assert verifier.jwks.fetch_timeout == 3.0


# --- unknown kids ------------------------------------------------------------------------------
def test_forged_kids_make_at_most_one_fetch_per_cooldown(fake_issuer, verifier, clock):
    verifier.verify(fake_issuer.mint())
    stranger = IssuerKey.generate("ES256")
    for _ in range(100):  # right after a fetch: the cooldown is running
        assert reason_of(verifier, fake_issuer.mint(key=stranger)) == "kid_unknown"
    assert fake_issuer.jwks_fetches == 1

    clock.advance(30)
    for _ in range(100):
        stranger.kid = IssuerKey.generate("ES256").kid
        assert reason_of(verifier, fake_issuer.mint(key=stranger)) == "kid_unknown"
    assert fake_issuer.jwks_fetches == 2


def test_forged_kids_cannot_keep_a_new_key_out_beyond_one_cooldown(fake_issuer, verifier, clock):
    verifier.verify(fake_issuer.mint())
    stranger = IssuerKey.generate("ES256")
    new_key = fake_issuer.rotate("ES256")  # published and signing at once: no publish lead
    genuine = fake_issuer.mint(key=new_key)
    for second in range(30):
        assert reason_of(verifier, fake_issuer.mint(key=stranger)) == "kid_unknown"
        if second == 0:
            assert reason_of(verifier, genuine) == "kid_unknown"
        clock.advance(1)
    assert reason_of(verifier, fake_issuer.mint(key=stranger)) == "kid_unknown"  # spends the refetch
    assert verifier.verify(genuine).tenant == "acme"  # which found the new key
    assert fake_issuer.jwks_fetches == 2


def test_a_new_key_is_found_at_once_when_the_cooldown_has_passed(fake_issuer, verifier, clock):
    verifier.verify(fake_issuer.mint())
    clock.advance(30)
    new_key = fake_issuer.rotate("RS256")
    assert verifier.verify(fake_issuer.mint(key=new_key)).tenant == "acme"


# --- the JWKS's content --------------------------------------------------------------------------
def test_unusable_jwks_entries_are_skipped_and_the_rest_used(fake_issuer, verifier):
    good = fake_issuer.initial["ES256"]
    small_rsa = IssuerKey.generate("RS256", rsa_bits=1024)
    twice = IssuerKey.generate("ES256")
    wrong_alg = IssuerKey.generate("ES256")
    encryption = IssuerKey.generate("ES256")
    no_alg = IssuerKey.generate("ES256")
    private = IssuerKey.generate("ES256")
    private_numbers = private.private_key.private_numbers()
    off_curve = IssuerKey.generate("ES256")
    entries = [
        good.jwk(),
        small_rsa.jwk(),
        twice.jwk(),
        twice.jwk(),
        wrong_alg.jwk(alg="RS256"),
        encryption.jwk(use="enc"),
        {key: value for key, value in no_alg.jwk().items() if key != "alg"},
        private.jwk(d=str(private_numbers.private_value)),
        "not an object",
        off_curve.jwk(x=b64url(b"\x01" * 32), y=b64url(b"\x02" * 32)),
    ]
    fake_issuer.jwks_body = json.dumps({"keys": entries}).encode()
    assert verifier.verify(fake_issuer.mint(key=good)).tenant == "acme"
    for refused in (small_rsa, twice, wrong_alg, encryption, no_alg, private, off_curve):
        assert reason_of(verifier, fake_issuer.mint(key=refused)) == "kid_unknown"


def test_refresh_fetches_now_and_says_whether_keys_are_usable(fake_issuer, verifier):
    assert verifier.jwks.refresh() is True
    assert fake_issuer.jwks_fetches == 1
    fake_issuer.mode = DOWN
    assert verifier.jwks.refresh() is True  # the last good keys stay usable
    assert fake_issuer.jwks_fetches == 2


# --- concurrency -------------------------------------------------------------------------------
def test_threads_starting_together_share_one_fetch(fake_issuer, verifier):
    fake_issuer.mode, fake_issuer.delay = SLOW, 0.3
    token = fake_issuer.mint()
    results: list[str] = []
    start = threading.Barrier(16)

    def verify() -> None:
        start.wait()
        results.append(verifier.verify(token).tenant)

    threads = [threading.Thread(target=verify) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert results == ["acme"] * 16
    assert (fake_issuer.metadata_fetches, fake_issuer.jwks_fetches) == (1, 1)


def test_while_one_thread_revalidates_the_others_go_on_with_the_cached_keys(fake_issuer, verifier, clock):
    token = fake_issuer.mint()
    verifier.verify(token)
    clock.advance(901)
    fake_issuer.mode, fake_issuer.delay = SLOW, 1.0
    refresher = threading.Thread(target=verifier.verify, args=(token,))
    refresher.start()
    while fake_issuer.jwks_fetches < 2:  # the refresher's request has reached the issuer
        time.sleep(0.01)
    started = time.monotonic()
    assert verifier.verify(token).tenant == "acme"
    assert time.monotonic() - started < 0.5
    refresher.join(5)


def test_verify_async_fetches_in_a_thread_and_never_blocks_the_event_loop(fake_issuer, verifier):
    fake_issuer.mode, fake_issuer.delay = SLOW, 0.5
    token = fake_issuer.mint()

    async def scenario() -> tuple[str, int]:
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        ticking = asyncio.create_task(ticker())
        claims = await verifier.verify_async(token)
        done.set()
        await ticking
        return claims.tenant, ticks

    tenant, ticks = asyncio.run(scenario())
    assert tenant == "acme"
    assert ticks >= 20  # the loop kept running through two slow fetches (metadata, JWKS)


def test_verify_async_takes_no_thread_while_the_cache_is_fresh(fake_issuer, verifier, monkeypatch):
    token = fake_issuer.mint()
    verifier.verify(token)

    def no_thread(*args, **kwargs):
        raise AssertionError("a thread was used with a fresh cache")

    monkeypatch.setattr(asyncio, "to_thread", no_thread)
    assert asyncio.run(verifier.verify_async(token)).tenant == "acme"


def test_forged_kids_cost_an_event_loop_no_thread_while_no_refetch_is_due(fake_issuer, verifier, monkeypatch):
    verifier.verify(fake_issuer.mint())

    def no_thread(*args, **kwargs):
        raise AssertionError("a thread was used for a kid that cannot be refetched yet")

    monkeypatch.setattr(asyncio, "to_thread", no_thread)
    with pytest.raises(InvalidToken) as caught:
        asyncio.run(verifier.verify_async(fake_issuer.mint(key=IssuerKey.generate("ES256"))))
    assert caught.value.reason == "kid_unknown"
