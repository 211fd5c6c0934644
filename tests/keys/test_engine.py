"""The rotation state machine, every transition, with a fake clock (no database)."""

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from keys import engine
from keys.engine import (
    Activate,
    Bootstrap,
    CreateSuccessor,
    KeyState,
    Retire,
    RotationPolicy,
    rotation_decide,
)

T0 = datetime(2030, 1, 1, tzinfo=UTC)
POLICY = RotationPolicy(
    algorithm="ES256",
    rotation_interval=timedelta(days=30),
    publish_lead=timedelta(days=1),
    token_lifetime=timedelta(minutes=10),
    signer_recheck=timedelta(seconds=5),
    verifier_leeway=timedelta(seconds=60),
)


def active(kid: str = "a", *, at: datetime = T0, algorithm: str = "ES256") -> KeyState:
    return KeyState(kid=kid, phase=engine.ACTIVE, algorithm=algorithm, published_at=at, activated_at=at)


def pending(kid: str = "p", *, at: datetime) -> KeyState:
    return KeyState(kid=kid, phase=engine.PENDING, algorithm="ES256", published_at=at)


def retiring(kid: str = "r", *, stopped: datetime) -> KeyState:
    return KeyState(
        kid=kid,
        phase=engine.RETIRING,
        algorithm="ES256",
        published_at=stopped - timedelta(days=31),
        activated_at=stopped - timedelta(days=30),
        deactivated_at=stopped,
    )


def test_it_bootstraps_a_first_key_when_there_is_none():
    assert rotation_decide(keys=[], policy=POLICY, now=T0) == [Bootstrap(algorithm="ES256")]


def test_it_does_nothing_while_the_active_key_is_young():
    now = T0 + POLICY.rotation_interval - POLICY.publish_lead - timedelta(seconds=1)
    assert rotation_decide(keys=[active()], policy=POLICY, now=now) == []


def test_it_creates_a_successor_one_publish_lead_before_the_interval_ends():
    now = T0 + POLICY.rotation_interval - POLICY.publish_lead
    assert rotation_decide(keys=[active()], policy=POLICY, now=now) == [
        CreateSuccessor(algorithm="ES256", reason="scheduled")
    ]


def test_force_creates_a_successor_that_is_not_due():
    assert rotation_decide(keys=[active()], policy=POLICY, now=T0, force=True) == [
        CreateSuccessor(algorithm="ES256", reason="forced")
    ]


def test_force_does_not_create_a_second_successor():
    keys = [active(), pending(at=T0)]
    assert rotation_decide(keys=keys, policy=POLICY, now=T0, force=True) == []


def test_a_changed_algorithm_starts_a_rotation_to_it():
    policy = RotationPolicy(**{**POLICY.__dict__, "algorithm": "PS256"})
    assert rotation_decide(keys=[active()], policy=policy, now=T0) == [
        CreateSuccessor(algorithm="PS256", reason="algorithm changed from ES256 to PS256")
    ]


def test_it_keeps_a_successor_pending_until_it_was_published_for_the_lead():
    published = T0 + timedelta(days=29)
    keys = [active(), pending(at=published)]
    now = published + POLICY.publish_lead - timedelta(microseconds=1)
    assert rotation_decide(keys=keys, policy=POLICY, now=now) == []


def test_it_activates_the_successor_once_published_for_the_lead():
    published = T0 + timedelta(days=29)
    keys = [active(), pending(at=published)]
    now = published + POLICY.publish_lead
    assert rotation_decide(keys=keys, policy=POLICY, now=now) == [
        Activate(kid="p", previous_kid="a", reason="scheduled")
    ]


def test_without_an_active_key_it_activates_the_oldest_pending_key_at_once():
    keys = [pending("late", at=T0 + timedelta(hours=1)), pending("early", at=T0)]
    assert rotation_decide(keys=keys, policy=POLICY, now=T0 + timedelta(hours=1)) == [
        Activate(kid="early", previous_kid=None, reason="no active key")
    ]


def test_a_retiring_key_stays_published_until_every_token_it_signed_has_expired():
    stopped = T0 + timedelta(days=30)
    keys = [active("b", at=stopped), retiring(stopped=stopped)]
    last_valid_moment = stopped + timedelta(seconds=5) + timedelta(minutes=10) + timedelta(seconds=60)
    assert rotation_decide(keys=keys, policy=POLICY, now=last_valid_moment - timedelta(microseconds=1)) == []
    assert rotation_decide(keys=keys, policy=POLICY, now=last_valid_moment) == [Retire(kid="r")]


def test_retire_after_counts_the_signer_recheck_the_token_lifetime_and_the_leeway():
    assert POLICY.retire_after == timedelta(seconds=5 + 600 + 60)


def test_retiring_and_creating_a_successor_can_be_due_together():
    stopped = T0
    now = T0 + POLICY.rotation_interval
    keys = [active("b", at=T0), retiring("r", stopped=stopped)]
    decisions = rotation_decide(keys=keys, policy=POLICY, now=now)
    assert decisions == [CreateSuccessor(algorithm="ES256", reason="scheduled"), Retire(kid="r")]


@pytest.mark.parametrize("phase", [engine.RETIRED, engine.REVOKED])
def test_gone_keys_are_ignored(phase):
    gone = KeyState(kid="g", phase=phase, algorithm="ES256", published_at=T0)
    assert rotation_decide(keys=[active(), gone], policy=POLICY, now=T0) == []


def test_a_full_cycle_under_a_fake_clock_never_leaves_the_set_without_an_active_key():
    """Drive the engine through three rotations, applying decisions like the service does."""
    keys: dict[str, KeyState] = {}
    now = T0
    step = timedelta(hours=1)
    activations = []
    for _ in range(24 * 100):
        for decision in rotation_decide(keys=list(keys.values()), policy=POLICY, now=now):
            if isinstance(decision, Bootstrap):
                keys["k0"] = active("k0", at=now)
                activations.append(now)
            elif isinstance(decision, CreateSuccessor):
                kid = f"k{len(keys)}"
                keys[kid] = pending(kid, at=now)
            elif isinstance(decision, Activate):
                previous = keys[decision.previous_kid]
                keys[previous.kid] = KeyState(
                    **{**previous.__dict__, "phase": engine.RETIRING, "deactivated_at": now}
                )
                successor = keys[decision.kid]
                assert now - successor.published_at >= POLICY.publish_lead
                keys[decision.kid] = KeyState(
                    **{**successor.__dict__, "phase": engine.ACTIVE, "activated_at": now}
                )
                activations.append(now)
            elif isinstance(decision, Retire):
                retired = keys[decision.kid]
                assert now - retired.deactivated_at >= POLICY.retire_after
                keys[decision.kid] = KeyState(**{**retired.__dict__, "phase": engine.RETIRED})
        assert sum(key.phase == engine.ACTIVE for key in keys.values()) == 1
        now += step
    assert len(activations) == 4
    assert all(
        later - earlier == POLICY.rotation_interval for earlier, later in itertools.pairwise(activations)
    )


def test_the_next_activation_is_one_publish_lead_after_the_oldest_pending_key_was_published():
    keys = [
        active(at=T0),
        pending("newer", at=T0 + timedelta(days=29)),
        pending("older", at=T0 + timedelta(days=28)),
    ]

    assert engine.next_activation_at(keys=keys, policy=POLICY) == T0 + timedelta(days=29)


def test_with_nothing_pending_the_next_activation_ends_the_active_key_s_interval():
    activated_later = KeyState(
        kid="a", phase=engine.ACTIVE, algorithm="ES256", published_at=T0, activated_at=T0 + timedelta(days=1)
    )
    never_pending = KeyState(kid="a", phase=engine.ACTIVE, algorithm="ES256", published_at=T0)
    keys = [retiring(stopped=T0 - timedelta(days=2)), activated_later]

    assert engine.next_activation_at(keys=keys, policy=POLICY) == T0 + timedelta(days=31)
    assert engine.next_activation_at(keys=[never_pending], policy=POLICY) == T0 + timedelta(days=30)


def test_with_nothing_signing_and_nothing_pending_there_is_no_next_activation():
    assert engine.next_activation_at(keys=[], policy=POLICY) is None
    assert engine.next_activation_at(keys=[retiring(stopped=T0)], policy=POLICY) is None
