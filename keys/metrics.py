"""The signing-key gauges, computed from the published keys at each scrape of ``/metrics``.

``key_gauges`` is pure (key states, the rotation policy and the clock in); ``SigningKeyCollector``
reads the keys and hands the gauges to prometheus-client. ``config.metrics_api`` serves them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from django.db import DatabaseError
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from keys import engine
from keys.selectors import published_key_states
from keys.services import rotation_policy

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class KeyGauges:
    """What the signing-key gauges say at one moment."""

    keys_by_phase: dict[str, int]
    active_age_seconds: float | None
    next_rotation_seconds: float | None


def key_gauges(*, keys: Iterable[engine.KeyState], policy: engine.RotationPolicy, now: datetime) -> KeyGauges:
    """The gauges from the published keys and the rotation policy (pure: no ORM, the clock passed in).

    The next rotation is the moment a successor starts signing: a pending key activates one publish
    lead after it was published; with none pending, the engine publishes one a lead before the
    interval ends, so the active key is replaced when its interval is over. Negative means overdue
    (beat is not running the rotation check).
    """
    keys = list(keys)
    counts = {phase: 0 for phase in engine.PUBLISHED_PHASES}
    for key in keys:
        if key.phase in counts:
            counts[key.phase] += 1
    active = next((key for key in keys if key.phase == engine.ACTIVE), None)
    age = None if active is None else (now - (active.activated_at or active.published_at)).total_seconds()
    next_at = engine.next_activation_at(keys=keys, policy=policy)
    next_rotation = None if next_at is None else (next_at - now).total_seconds()
    return KeyGauges(keys_by_phase=counts, active_age_seconds=age, next_rotation_seconds=next_rotation)


class SigningKeyCollector:
    """Reads the published keys at each scrape; a database outage drops these gauges, not the scrape."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            states = published_key_states()
        except DatabaseError:
            logger.warning("metrics: cannot read the signing keys", exc_info=True)
            return
        gauges = key_gauges(keys=states, policy=rotation_policy(), now=timezone.now())
        published = GaugeMetricFamily(
            "issuer_signing_keys", "Published signing keys by phase.", labels=["phase"]
        )
        for phase, count in gauges.keys_by_phase.items():
            published.add_metric([phase], count)
        yield published
        if gauges.active_age_seconds is not None:
            yield GaugeMetricFamily(
                "issuer_signing_key_active_age_seconds",
                "Seconds since the active signing key started signing.",
                value=gauges.active_age_seconds,
            )
        if gauges.next_rotation_seconds is not None:
            yield GaugeMetricFamily(
                "issuer_signing_key_next_rotation_seconds",
                "Seconds until a successor key starts signing (negative: overdue).",
                value=gauges.next_rotation_seconds,
            )
