"""The kit's cache against the real issuer's key life cycle, over real HTTP: a forced rotation under
load with zero verification failures, an emergency revoke honoured within the cache's bound, and
verification going on from the cached keys while the issuer is down."""

from __future__ import annotations

import re
import threading
import time
from collections import Counter

from keys.selectors import JWKS_CACHE_SECONDS
from tests.support.downstream import downstream_world, manage_output, token_parts

# The issuer publishes its JWKS with max-age 2 and a successor 2 s (+ its own 5 s JWKS cache) before
# it signs; the orders service keeps keys 1 to 2 s. Together the whole life cycle fits in a test.
FAST_ISSUER = {
    "JWKS_MAX_AGE": "2",
    "KEY_PUBLISH_LEAD": "2",
    "THROTTLE_ADDRESS_RATE": "off",
    "THROTTLE_PRINCIPAL_RATE": "off",
}
FAST_ORDERS = {"JWKS_MIN_CACHE_AGE": "1", "JWKS_MAX_CACHE_AGE": "2"}
FETCH_DEADLINE = 3  # the kit's default fetch_timeout


class Load:
    """One client thread: exchange a fresh token, call the orders service with it, record the kid
    and the answer; bounded in count and time, stopped by ``stop``."""

    def __init__(self, world, *, seconds: float = 90, limit: int = 3000) -> None:
        self.world = world
        self.deadline = time.monotonic() + seconds
        self.limit = limit
        self.stopped = threading.Event()
        self.verified: Counter[str] = Counter()
        self.failures: list[tuple[str, int, bytes]] = []
        self.exchange_failures: list[int] = []
        self.thread = threading.Thread(target=self.run, name="load", daemon=True)

    def run(self) -> None:
        for _ in range(self.limit):
            if self.stopped.is_set() or time.monotonic() > self.deadline:
                return
            exchanged = self.world.issuer.exchange(self.world.entra.mint(), tenant="acme")
            if exchanged.status != 200:
                self.exchange_failures.append(exchanged.status)
                continue
            token = exchanged.json()["access_token"]
            kid = token_parts(token)[0]["kid"]
            answer = self.world.orders.get("/orders/", token)
            if answer.status == 200:
                self.verified[kid] += 1
            else:
                self.failures.append((kid, answer.status, answer.body))

    def __repr__(self) -> str:
        return (
            f"<Load alive={self.thread.is_alive()} verified={dict(self.verified)} "
            f"failures={self.failures[:3]} exchange_failures={self.exchange_failures[:5]}>"
        )

    def __enter__(self) -> Load:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join(30)


def eventually(predicate, *, seconds: float, step: float = 0.2, about: object = ""):
    deadline = time.monotonic() + seconds
    while True:
        result = predicate()
        if result:
            return result
        assert time.monotonic() < deadline, f"the condition did not come true in time {about}"
        time.sleep(step)  # waiting on real processes (the issuer, the orders service), not a clock seam


def test_a_forced_rotation_then_a_revoke_under_load(tmp_path, issuer_database_template, fake_entra_server):
    fake_entra_server.reset()
    with downstream_world(
        tmp_path, issuer_database_template, fake_entra_server, issuer=FAST_ISSUER, orders=FAST_ORDERS
    ) as world:
        old_token = world.token("acme")
        old_kid = token_parts(old_token)[0]["kid"]

        with Load(world) as load:
            eventually(lambda: load.verified[old_kid] >= 5, seconds=30)
            created = manage_output(world.issuer_env, "rotate_keys", "--force")
            new_kid = re.search(r"created (\S+)", created).group(1)
            # A beat stand-in: the successor activates once its publish lead has passed.
            eventually(
                lambda: "activated" in manage_output(world.issuer_env, "rotate_keys"), seconds=40, step=1
            )
            eventually(lambda: load.verified[new_kid] >= 20, seconds=30, about=load)

        assert load.failures == [], load.failures[:3]
        assert load.exchange_failures == []
        assert load.verified[old_kid] >= 5 and load.verified[new_kid] >= 20
        assert set(load.verified) == {old_kid, new_kid}
        assert world.orders.get("/orders/", old_token).status == 200  # retiring: still published

        new_token = world.token("acme")
        assert token_parts(new_token)[0]["kid"] == new_kid
        manage_output(world.issuer_env, "rotate_keys", "--revoke", old_kid)
        revoked_at = time.monotonic()
        refused = eventually(
            lambda: (answer := world.orders.get("/orders/", old_token)).status == 401 and answer, seconds=20
        )
        took = time.monotonic() - revoked_at
        # The issuer's worker serves its cached JWKS up to JWKS_CACHE_SECONDS, the kit keeps it up to
        # its max-age bound, and one fetch may take up to its deadline.
        bound = JWKS_CACHE_SECONDS + int(FAST_ORDERS["JWKS_MAX_CACHE_AGE"]) + FETCH_DEADLINE
        assert took <= bound, f"the revoked key verified for {took:.1f} s"
        assert "the issuer publishes no key with the token's key id" in refused.headers["www-authenticate"]
        assert world.orders.get("/orders/", new_token).status == 200


def test_verification_goes_on_from_the_cached_keys_while_the_issuer_is_down(
    tmp_path, issuer_database_template, fake_entra_server
):
    fake_entra_server.reset()
    with downstream_world(
        tmp_path, issuer_database_template, fake_entra_server, issuer=FAST_ISSUER, orders=FAST_ORDERS
    ) as world:
        token = world.token("acme")
        assert world.orders.get("/orders/", token).status == 200  # the keys are now cached

        world.issuer.process.terminate()
        world.issuer.process.wait(10)

        def refresh_failed_and_still_verified() -> bool:
            answer = world.orders.get("/orders/", token)
            assert answer.status == 200, answer.body
            return "were not refreshed" in world.orders.log.read_text()

        eventually(refresh_failed_and_still_verified, seconds=20)
        for _ in range(5):
            assert world.orders.get("/orders/", token).status == 200
        log = world.orders.log.read_text()
        assert token not in log
