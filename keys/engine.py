"""The key-rotation state machine: from the current keys, the policy and ``now``, what to do next.

Pure Python: frozen dataclasses in, a list of decisions out, the clock passed in. No ORM and no
settings, so every transition is unit-tested with a fake clock; ``keys.services`` applies the
decisions under a row lock.

Phases: pending (published, not signing) → active (signing) → retiring (published, verify only)
→ retired (gone); revoked (gone at once) is the emergency exit and handled by the service.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

PENDING = "pending"
ACTIVE = "active"
RETIRING = "retiring"
RETIRED = "retired"
REVOKED = "revoked"
PUBLISHED_PHASES = (PENDING, ACTIVE, RETIRING)


@dataclass(frozen=True)
class KeyState:
    """What the engine needs to know about one published key."""

    kid: str
    phase: str
    algorithm: str
    published_at: datetime
    activated_at: datetime | None = None
    deactivated_at: datetime | None = None  # when it stopped signing


@dataclass(frozen=True)
class RotationPolicy:
    """The timing rules, from settings."""

    algorithm: str
    rotation_interval: timedelta
    publish_lead: timedelta
    token_lifetime: timedelta
    # How long a web worker may keep signing with a key after it stopped being active.
    signer_recheck: timedelta
    # Clock skew a verifier tolerates past ``exp``.
    verifier_leeway: timedelta

    @property
    def retire_after(self) -> timedelta:
        """How long after a key stops signing until every token it signed has expired."""
        return self.signer_recheck + self.token_lifetime + self.verifier_leeway


@dataclass(frozen=True)
class Bootstrap:
    """Create a first key and make it active at once (nothing was ever signed or published)."""

    algorithm: str


@dataclass(frozen=True)
class CreateSuccessor:
    """Create and publish a pending key; it signs only after the publish lead."""

    algorithm: str
    reason: str


@dataclass(frozen=True)
class Activate:
    """Make a pending key active; the previous active key (if any) starts retiring."""

    kid: str
    previous_kid: str | None
    reason: str


@dataclass(frozen=True)
class Retire:
    """Drop a retiring key from the JWKS: every token it signed has expired."""

    kid: str


Decision = Bootstrap | CreateSuccessor | Activate | Retire


def rotation_decide(
    *, keys: Sequence[KeyState], policy: RotationPolicy, now: datetime, force: bool = False
) -> list[Decision]:
    """Everything that is due at ``now``; an empty list when nothing is (the idempotent case)."""
    decisions: list[Decision] = []
    active = [key for key in keys if key.phase == ACTIVE]
    pending = sorted((key for key in keys if key.phase == PENDING), key=lambda key: key.published_at)
    current = active[0] if active else None

    if current is None and not pending:
        decisions.append(Bootstrap(algorithm=policy.algorithm))
    elif current is None:
        # Nothing signs: an outage. The oldest published successor is the best we have.
        decisions.append(Activate(kid=pending[0].kid, previous_kid=None, reason="no active key"))
    elif pending:
        successor = pending[0]
        if now >= successor.published_at + policy.publish_lead:
            decisions.append(Activate(kid=successor.kid, previous_kid=current.kid, reason="scheduled"))
    else:
        reason = _successor_reason(current, policy=policy, now=now, force=force)
        if reason:
            decisions.append(CreateSuccessor(algorithm=policy.algorithm, reason=reason))

    for key in keys:
        if key.phase != RETIRING:
            continue
        stopped = key.deactivated_at or key.published_at
        if now >= stopped + policy.retire_after:
            decisions.append(Retire(kid=key.kid))
    return decisions


def next_activation_at(*, keys: Sequence[KeyState], policy: RotationPolicy) -> datetime | None:
    """When a successor will start signing: the oldest pending key one publish lead after it was
    published; with none pending, the end of the active key's interval (the engine publishes a
    successor a lead before that). ``None`` when nothing signs and nothing is pending."""
    pending = sorted((key for key in keys if key.phase == PENDING), key=lambda key: key.published_at)
    if pending:
        return pending[0].published_at + policy.publish_lead
    active = next((key for key in keys if key.phase == ACTIVE), None)
    if active is None:
        return None
    return (active.activated_at or active.published_at) + policy.rotation_interval


def _successor_reason(current: KeyState, *, policy: RotationPolicy, now: datetime, force: bool) -> str:
    if force:
        return "forced"
    if current.algorithm != policy.algorithm:
        return f"algorithm changed from {current.algorithm} to {policy.algorithm}"
    activated = current.activated_at or current.published_at
    if now >= activated + policy.rotation_interval - policy.publish_lead:
        return "scheduled"
    return ""
