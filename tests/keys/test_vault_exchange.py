"""The exchange with KEY_STORE=azure-keyvault: every vault fault is a 503 temporarily_unavailable
with Retry-After, never a 500 and never a token signed by anything else, and it recovers."""

from __future__ import annotations

import pytest

from keys import vault

pytestmark = pytest.mark.django_db

FAULTS = {
    "throttled": {"status": 429, "retry_after": 5},
    "failing": {"status": 500},
    "unavailable": {"status": 503},
    "slow": {"delay": 4.0},
    "garbage": {"garbage": True},
}


@pytest.mark.parametrize("fault", FAULTS)
def test_a_vault_fault_during_an_exchange_is_a_503_with_retry_after_and_recovers(
    key_vault, orders_policy, exchange, fault
):
    orders_policy.grant(orders_policy.viewer, orders_policy.acme)
    assert exchange().status_code == 200
    key_vault.fail(operation="sign", **FAULTS[fault])

    refused = exchange()

    assert refused.status_code == 503
    assert refused.json()["error"] == "temporarily_unavailable"
    assert int(refused["Retry-After"]) >= 1
    assert "access_token" not in refused.json()
    vault.guard.reset()
    assert exchange().status_code == 200
