"""Fixtures of the downstream kit's tests: a fake issuer on loopback and verifiers pointed at it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from issuer_verify import TokenVerifier
from tests.support.downstream import issuer_template
from tests.support.fake_issuer import AUDIENCE, FakeIssuer


@pytest.fixture(scope="session")
def fake_issuer_server():
    server = FakeIssuer().start()
    yield server
    server.close()


@pytest.fixture
def fake_issuer(fake_issuer_server: FakeIssuer) -> FakeIssuer:
    """The fake issuer, healthy and reset (its first keys, ES256 signing, max-age 900)."""
    fake_issuer_server.reset()
    yield fake_issuer_server
    fake_issuer_server.release.set()  # frees a handler still held by a slow-mode test


@pytest.fixture
def make_verifier(fake_issuer: FakeIssuer) -> Callable[..., TokenVerifier]:
    """``make_verifier(**options)``: a new verifier (with its own empty cache) for the fake issuer."""

    def make(**options) -> TokenVerifier:
        options.setdefault("issuer", fake_issuer.url)
        options.setdefault("audience", AUDIENCE)
        return TokenVerifier(**options)

    return make


@pytest.fixture
def verifier(make_verifier) -> TokenVerifier:
    return make_verifier()


@pytest.fixture(scope="session")
def issuer_database_template(tmp_path_factory, fake_entra_server):
    """An issuer database (migrated, the orders policy, one key) that each end-to-end world copies."""
    return issuer_template(tmp_path_factory.mktemp("issuer-template"), fake_entra_server.authority)
