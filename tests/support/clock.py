"""The one way tests replace a clock: a ``FrozenClock`` in place of a reader's ``clock`` attribute.

Code that reads the time itself names its clock in one attribute, ``clock``: a class attribute
(``JwksCache.clock = time.time``, ``GrantValidityFilter.clock = timezone.now``) or, for module-level
services, a module attribute (``keys.services.clock``). Tests put a ``FrozenClock`` there with the
``freeze_clock`` fixture (tests/conftest.py), which undoes it after the test. Engines take ``now``
as an argument instead and need none of this.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Generic, TypeVar

# datetime for wall clocks (timezone.now), float seconds for time.time and time.monotonic.
Reading = TypeVar("Reading", datetime, float)


class FrozenClock(Generic[Reading]):
    """A clock that reads ``now`` until the test advances it (or sets ``now``)."""

    def __init__(self, now: Reading) -> None:
        self.now = now

    def __call__(self) -> Reading:
        return self.now

    def advance(self, seconds: float = 0, **delta: float) -> Reading:
        """Move on by ``seconds`` and ``timedelta(**delta)`` (``minutes=10``); returns the new reading."""
        step = timedelta(seconds=seconds, **delta)
        if isinstance(self.now, datetime):
            self.now = self.now + step
        else:
            self.now = self.now + step.total_seconds()
        return self.now
