"""The signing-key gauges: counted by phase, the active key's age and the time to the next rotation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from keys import engine
from keys.metrics import key_gauges
from keys.services import rotation_policy

NOW = datetime(2027, 1, 1, tzinfo=UTC)


def key(kid: str, phase: str, published: datetime, activated: datetime | None = None) -> engine.KeyState:
    return engine.KeyState(
        kid=kid, phase=phase, algorithm="ES256", published_at=published, activated_at=activated
    )


def test_key_gauges_count_from_the_activation_and_the_policy():
    policy = rotation_policy()
    activated = NOW - timedelta(days=3)
    gauges = key_gauges(keys=[key("a", engine.ACTIVE, activated, activated)], policy=policy, now=NOW)

    assert gauges.active_age_seconds == timedelta(days=3).total_seconds()
    assert gauges.next_rotation_seconds == (policy.rotation_interval - timedelta(days=3)).total_seconds()


def test_key_gauges_go_negative_when_the_rotation_is_overdue():
    policy = rotation_policy()
    activated = NOW - policy.rotation_interval - timedelta(hours=1)
    gauges = key_gauges(keys=[key("a", engine.ACTIVE, activated, activated)], policy=policy, now=NOW)

    assert gauges.next_rotation_seconds == -3600


def test_key_gauges_take_the_oldest_pending_key_as_the_next_activation():
    policy = rotation_policy()
    keys = [
        key("a", engine.ACTIVE, NOW - timedelta(days=30), NOW - timedelta(days=30)),
        key("b", engine.PENDING, NOW - timedelta(seconds=100)),
        key("c", engine.RETIRING, NOW - timedelta(days=60), NOW - timedelta(days=60)),
    ]
    gauges = key_gauges(keys=keys, policy=policy, now=NOW)

    assert gauges.next_rotation_seconds == policy.publish_lead.total_seconds() - 100
    assert gauges.keys_by_phase == {"pending": 1, "active": 1, "retiring": 1}
