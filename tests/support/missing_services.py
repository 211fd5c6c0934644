"""What a test does when a service it needs is missing: skip with the reason, or fail in CI."""

from __future__ import annotations

import os

import pytest

REQUIRE_SERVICES = os.environ.get("TEST_REQUIRE_SERVICES", "").lower() in {"1", "true", "yes"}


def skip_or_fail(reason: str) -> None:
    """Skip a test that needs a missing service; CI sets TEST_REQUIRE_SERVICES so it fails instead."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (TEST_REQUIRE_SERVICES is set)")
    pytest.skip(reason)
