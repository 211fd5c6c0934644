"""Fixtures of the key tests: the key services' clock, frozen, and the rotation policy under test."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from keys import services as key_services
from keys.engine import RotationPolicy
from tests.support.clock import FrozenClock

T0 = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture
def clock(freeze_clock: Any) -> FrozenClock[datetime]:
    """The key services' wall clock, at T0 until the test moves it."""
    return freeze_clock(key_services, at=T0)


@pytest.fixture
def weekly_rotation(settings: Any) -> RotationPolicy:
    """ES256 keys rotated weekly, each published an hour before it signs; 10-minute tokens."""
    settings.KEY_ALGORITHM = "ES256"
    settings.TOKEN_LIFETIME = 600
    settings.KEY_PUBLISH_LEAD = 3600
    settings.JWKS_MAX_AGE = 900
    settings.KEY_ROTATION_INTERVAL = 7 * 86_400
    return key_services.rotation_policy()
