"""Group overage through POST /oauth2/token: Graph proves group grants, or they do not apply.

The fake Entra mints the overage token (``_claim_names``/``_claim_sources`` instead of ``groups``);
the fake Graph answers checkMemberGroups over real https (tests/fake_graph.py).
"""

from __future__ import annotations

import json
import logging
import time

import pytest
from django.test import override_settings
from joserfc import jwt
from joserfc.jwk import KeySet

from tests import fake_entra as entra
from tests import fake_graph as fake
from tests.support.caches import REDIS_DOWN
from tests.support.exchange import GROUP, days

pytestmark = pytest.mark.django_db

OTHER_GROUP = "68686868-6868-4868-8868-686868686868"
GLOBEX_GROUP = "69696969-6969-4969-8969-696969696969"


def overage_token(fake_entra, **claims) -> str:
    """What Entra sends a user in more than 200 groups: a pointer to Graph instead of ``groups``."""
    return fake_entra.mint(
        _claim_names={"groups": "src1"},
        _claim_sources={
            "src1": {"endpoint": f"https://graph.microsoft.com/v1.0/users/{entra.OID}/getMemberObjects"}
        },
        **claims,
    )


def decisions(caplog) -> list[dict]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "authz.decisions"]


def overage_notes(record: dict) -> list[str]:
    return [note for note in record["notes"] if note.startswith("group_overage")]


def roles_of(client, response) -> list[str]:
    assert response.status_code == 200, response.content
    key_set = KeySet.import_key_set(client.get("/.well-known/jwks.json").json())
    return jwt.decode(response.json()["access_token"], key_set, algorithms=["ES256"]).claims["roles"]


@pytest.fixture
def group_policy(orders_policy):
    """acme: viewer for GROUP, editor for OTHER_GROUP; globex: viewer for GLOBEX_GROUP."""
    orders_policy.grant(orders_policy.viewer, orders_policy.acme, subject=GROUP, kind="group")
    orders_policy.grant(orders_policy.editor, orders_policy.acme, subject=OTHER_GROUP, kind="group")
    orders_policy.grant(orders_policy.viewer, orders_policy.globex, subject=GLOBEX_GROUP, kind="group")
    return orders_policy


# --- resolved through Graph ----------------------------------------------------------------------
def test_an_overage_token_gets_its_group_grant_through_graph(
    client, exchange, fake_entra, fake_graph, group_policy, caplog
):
    fake_graph.member(entra.TENANT_ID, entra.OID, GROUP)
    with caplog.at_level(logging.INFO, logger="authz.decisions"):
        response = exchange(overage_token(fake_entra), tenant="acme")
    assert roles_of(client, response) == ["viewer"]
    [record] = decisions(caplog)
    assert record["outcome"] == "issued"
    assert "group_overage" not in record["excluded"]
    assert overage_notes(record) == ["group_overage: resolved through Graph (2 groups checked, member of 1)"]


def test_only_the_group_ids_granted_in_the_named_tenant_are_asked(
    exchange, fake_entra, fake_graph, group_policy
):
    fake_graph.member(entra.TENANT_ID, entra.OID, GROUP, GLOBEX_GROUP)
    group_policy.grant(group_policy.viewer, group_policy.acme, subject=entra.OID)  # users are not asked
    exchange(overage_token(fake_entra), tenant="acme")
    [check] = fake_graph.checks
    assert sorted(check.group_ids) == sorted([GROUP, OTHER_GROUP])
    assert (check.tid, check.oid) == (entra.TENANT_ID, entra.OID)


def test_without_a_named_tenant_the_groups_of_every_active_tenant_are_asked(
    client, exchange, fake_entra, fake_graph, group_policy
):
    fake_graph.member(entra.TENANT_ID, entra.OID, GLOBEX_GROUP)
    response = exchange(overage_token(fake_entra), audience="api://billing")
    assert response.status_code == 200, response.content
    [check] = fake_graph.checks
    assert sorted(check.group_ids) == sorted([GROUP, OTHER_GROUP, GLOBEX_GROUP])


def test_groups_of_expired_grants_and_suspended_tenants_are_not_asked(
    exchange, fake_entra, fake_graph, orders_policy
):
    orders_policy.grant(orders_policy.viewer, orders_policy.acme, subject=GROUP, kind="group")
    orders_policy.grant(
        orders_policy.editor, orders_policy.acme, subject=OTHER_GROUP, kind="group", valid_until=days(-1)
    )
    orders_policy.grant(
        orders_policy.editor, orders_policy.acme, subject=GLOBEX_GROUP, kind="group", valid_from=days(1)
    )
    orders_policy.globex.status = "suspended"
    orders_policy.globex.save()
    orders_policy.grant(
        orders_policy.viewer,
        orders_policy.globex,
        subject="6a6a6a6a-6a6a-4a6a-8a6a-6a6a6a6a6a6a",
        kind="group",
    )
    exchange(overage_token(fake_entra))
    assert [check.group_ids for check in fake_graph.checks] == [(GROUP,)]


def test_graph_is_asked_at_most_twenty_group_ids_per_call(exchange, fake_entra, fake_graph, orders_policy):
    groups = [f"{n:08x}-0000-4000-8000-0000000000bb" for n in range(25)]
    for group in groups:
        orders_policy.grant(orders_policy.viewer, orders_policy.acme, subject=group, kind="group")
    fake_graph.member(entra.TENANT_ID, entra.OID, groups[24])
    assert exchange(overage_token(fake_entra), tenant="acme").status_code == 200
    assert [len(check.group_ids) for check in fake_graph.checks] == [20, 5]


def test_the_cached_answer_spares_graph_a_second_call(client, exchange, fake_entra, fake_graph, group_policy):
    fake_graph.member(entra.TENANT_ID, entra.OID, GROUP)
    assert roles_of(client, exchange(overage_token(fake_entra), tenant="acme")) == ["viewer"]
    assert roles_of(client, exchange(overage_token(fake_entra), tenant="acme")) == ["viewer"]
    assert len(fake_graph.checks) == 1
    assert len(fake_graph.token_requests) == 1


def test_without_group_grants_graph_is_not_asked(exchange, fake_entra, fake_graph, orders_policy, caplog):
    orders_policy.grant(orders_policy.viewer, orders_policy.acme)
    with caplog.at_level(logging.INFO, logger="authz.decisions"):
        assert exchange(overage_token(fake_entra)).status_code == 200
    assert fake_graph.checks == [] and fake_graph.token_requests == []
    [record] = decisions(caplog)
    assert overage_notes(record) == ["group_overage: no group grants to check"]
    assert "group_overage" not in record["excluded"]


def test_a_user_in_none_of_the_granted_groups_gets_no_group_grant(
    exchange, fake_entra, fake_graph, group_policy
):
    fake_graph.member(entra.TENANT_ID, entra.OID, "6b6b6b6b-6b6b-4b6b-8b6b-6b6b6b6b6b6b")
    response = exchange(overage_token(fake_entra), tenant="acme")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_hasgroups_is_resolved_like_claim_names(client, exchange, fake_entra, fake_graph, group_policy):
    fake_graph.member(entra.TENANT_ID, entra.OID, OTHER_GROUP)
    response = exchange(fake_entra.mint(hasgroups=True), tenant="acme")
    assert roles_of(client, response) == ["editor"]


def test_a_token_that_lists_its_groups_never_asks_graph(exchange, fake_entra, fake_graph, group_policy):
    assert exchange(fake_entra.mint(groups=[GROUP]), tenant="acme").status_code == 200
    assert fake_graph.checks == [] and fake_graph.token_requests == []


def test_without_overage_the_warm_exchange_costs_no_more_queries(
    exchange, fake_entra, fake_graph, group_policy, django_assert_max_num_queries
):
    token = fake_entra.mint(groups=[GROUP])
    assert exchange(token, tenant="acme").status_code == 200  # warms the caches
    with django_assert_max_num_queries(4):
        assert exchange(token, tenant="acme").status_code == 200


def test_with_the_redis_cache_down_graph_is_asked_each_time_and_still_proves(
    client, exchange, fake_entra, fake_graph, group_policy
):
    fake_graph.member(entra.TENANT_ID, entra.OID, GROUP)
    with override_settings(CACHES=REDIS_DOWN):
        answers = [exchange(overage_token(fake_entra), tenant="acme") for _ in range(2)]
    assert [roles_of(client, answer) for answer in answers] == [["viewer"], ["viewer"]]
    assert len(fake_graph.checks) == 2  # only the caching is lost


# --- Graph failing: group grants not applied, the log says why, never a 500 ----------------------
@pytest.mark.parametrize(
    ("breakage", "reason"),
    [
        ({"graph_mode": fake.DOWN}, "graph.unavailable"),
        ({"graph_mode": fake.THROTTLED}, "graph.throttled"),
        ({"graph_mode": fake.FORBIDDEN}, "graph.refused"),
        ({"graph_mode": fake.GARBAGE}, "graph.invalid_answer"),
        ({"token_mode": fake.DOWN}, "graph.token_failed"),
        ({"token_mode": fake.FORBIDDEN}, "graph.token_failed"),
    ],
)
def test_a_failing_graph_applies_no_group_grant_and_the_log_says_why(
    exchange, fake_entra, fake_graph, group_policy, caplog, breakage, reason
):
    fake_graph.member(entra.TENANT_ID, entra.OID, GROUP)
    for name, value in breakage.items():
        setattr(fake_graph, name, value)
    with caplog.at_level(logging.INFO, logger="authz.decisions"):
        response = exchange(overage_token(fake_entra), tenant="acme")
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "invalid_request"
    [record] = decisions(caplog)
    assert record["reason"] == "tenant.no_access"
    assert overage_notes(record) == [f"group_overage: {reason}; group grants not applied"]


def test_a_failing_graph_still_lets_user_grants_through(
    client, exchange, fake_entra, fake_graph, group_policy, caplog
):
    group_policy.grant(group_policy.editor, group_policy.globex)
    fake_graph.graph_mode = fake.DOWN
    with caplog.at_level(logging.INFO, logger="authz.decisions"):
        response = exchange(overage_token(fake_entra), tenant="globex")
    assert roles_of(client, response) == ["editor"]
    [record] = decisions(caplog)
    assert "group_overage" in record["excluded"]


def test_a_slow_graph_delays_the_exchange_by_at_most_two_seconds(
    exchange, fake_entra, fake_graph, group_policy, caplog
):
    fake_graph.member(entra.TENANT_ID, entra.OID, GROUP)
    fake_graph.graph_mode, fake_graph.delay = fake.SLOW, 10
    token = overage_token(fake_entra)
    with caplog.at_level(logging.INFO, logger="authz.decisions"):
        started = time.perf_counter()
        response = exchange(token, tenant="acme")
        elapsed = time.perf_counter() - started
    assert response.status_code == 400
    assert elapsed <= 2.5, elapsed
    [record] = decisions(caplog)
    assert overage_notes(record) == ["group_overage: graph.timeout; group grants not applied"]


def test_a_slow_token_endpoint_delays_the_exchange_by_at_most_two_seconds(
    exchange, fake_entra, fake_graph, group_policy
):
    fake_graph.token_mode, fake_graph.delay = fake.SLOW, 10
    token = overage_token(fake_entra)
    started = time.perf_counter()
    assert exchange(token, tenant="acme").status_code == 400
    assert time.perf_counter() - started <= 2.5


def test_after_a_failure_graph_is_left_alone_and_the_log_says_so(
    exchange, fake_entra, fake_graph, group_policy, caplog
):
    fake_graph.graph_mode = fake.THROTTLED
    exchange(overage_token(fake_entra), tenant="acme")
    fake_graph.graph_mode = fake.OK
    with caplog.at_level(logging.INFO, logger="authz.decisions"):
        exchange(overage_token(fake_entra), tenant="acme")
    assert len(fake_graph.checks) == 1
    record = decisions(caplog)[-1]
    assert overage_notes(record) == [
        "group_overage: graph.backoff after graph.throttled; group grants not applied"
    ]


def test_groups_graph_answered_before_the_deadline_apply_and_the_rest_do_not(
    client, exchange, fake_entra, fake_graph, orders_policy, monkeypatch, caplog
):
    groups = [f"{n:08x}-0000-4000-8000-0000000000dd" for n in range(25)]
    orders_policy.grant(orders_policy.viewer, orders_policy.acme, subject=groups[0], kind="group")
    for group in groups[1:]:
        orders_policy.grant(orders_policy.editor, orders_policy.acme, subject=group, kind="group")
    fake_graph.member(entra.TENANT_ID, entra.OID, groups[0], groups[24])
    answer_check = fake_graph._check

    def second_call_hangs(oid, headers, raw):
        if fake_graph.checks:
            fake_graph.release.wait(10)
        return answer_check(oid, headers, raw)

    monkeypatch.setattr(fake_graph, "_check", second_call_hangs)
    with caplog.at_level(logging.INFO, logger="authz.decisions"):
        response = exchange(overage_token(fake_entra), tenant="acme")
    assert roles_of(client, response) == ["viewer"]  # groups[24], an editor group, was never answered
    [record] = decisions(caplog)
    assert overage_notes(record) == [
        "group_overage: graph.timeout (20 groups checked, member of 1); the other group grants not applied"
    ]
    assert "group_overage" in record["excluded"]


def test_past_the_limit_the_rest_of_the_groups_are_not_asked_and_the_log_says_so(
    exchange, fake_entra, fake_graph, orders_policy, caplog, monkeypatch
):
    from authz import services

    monkeypatch.setattr(services, "GRAPH_GROUP_LIMIT", 3)
    groups = [f"{n:08x}-0000-4000-8000-0000000000cc" for n in range(5)]
    for group in groups:
        orders_policy.grant(orders_policy.viewer, orders_policy.acme, subject=group, kind="group")
    fake_graph.member(entra.TENANT_ID, entra.OID, groups[0])
    with caplog.at_level(logging.INFO, logger="authz.decisions"):
        assert exchange(overage_token(fake_entra), tenant="acme").status_code == 200
    assert [check.group_ids for check in fake_graph.checks] == [tuple(groups[:3])]
    [record] = decisions(caplog)
    assert overage_notes(record) == [
        "group_overage: resolved through Graph (3 groups checked, member of 1); "
        "more than 3 granted groups: the rest not applied"
    ]
    assert "group_overage" in record["excluded"]


# --- GRAPH_OVERAGE off ---------------------------------------------------------------------------
def test_with_graph_overage_off_group_grants_do_not_apply_as_before(
    exchange, fake_entra, fake_graph, group_policy, settings, caplog
):
    settings.GRAPH_OVERAGE = False
    fake_graph.member(entra.TENANT_ID, entra.OID, GROUP)
    with caplog.at_level(logging.INFO, logger="authz.decisions"):
        response = exchange(overage_token(fake_entra), tenant="acme")
    assert response.status_code == 400
    assert fake_graph.checks == [] and fake_graph.token_requests == []
    [record] = decisions(caplog)
    assert overage_notes(record) == ["group_overage: group grants not applied (GRAPH_OVERAGE is off)"]
