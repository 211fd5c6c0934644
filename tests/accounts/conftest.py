"""Fixtures of the identity provider tests: the fake providers of every kind, trusted through settings."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from accounts.identity_provider import IdentityProvider
from accounts.provider_config import identity_providers_parse
from tests.fake_providers import FakeProviders


@pytest.fixture(scope="session")
def fake_providers_server() -> Iterator[FakeProviders]:
    """The fake providers on loopback for the whole run (see tests/fake_providers.py)."""
    fakes = FakeProviders().start()
    yield fakes
    fakes.close()


@pytest.fixture
def trust(settings: Any) -> Callable[..., tuple[IdentityProvider, ...]]:
    """``trust(*entries)``: these IDENTITY_PROVIDERS_FILE entries, and no others, are declared."""

    def declare(*entries: dict[str, Any]) -> tuple[IdentityProvider, ...]:
        settings.IDENTITY_PROVIDERS = identity_providers_parse(
            {"providers": list(entries)}, entra_tenant_ids=settings.ENTRA_TENANT_ID
        )
        return settings.IDENTITY_PROVIDERS

    return declare


@pytest.fixture
def fake_providers(fake_providers_server, fake_entra, trust) -> FakeProviders:
    """The fakes, healthy and reset, declared next to the fake Entra's directories; the key cache is
    empty and nothing is stored (the ``fake_entra`` fixture sees to both)."""
    fake_providers_server.reset()
    trust(*fake_providers_server.entries())
    return fake_providers_server
