"""The exchange fixtures of tests/authz, for the metrics and logging tests that drive exchanges."""

from tests.authz.conftest import exchange, policy, signing_key

__all__ = ["exchange", "policy", "signing_key"]
