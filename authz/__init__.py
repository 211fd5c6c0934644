"""Authorization: tenants, roles, permissions, grants, audiences, the claim contract, the exchange."""
