"""accounts.graph: checkMemberGroups over real https against the fake Graph, within one deadline."""

from __future__ import annotations

import logging
import time
from contextlib import ExitStack

import pytest
from django.core.cache import cache

from accounts import graph
from accounts.graph import GraphClient, graph_client, graph_credential, member_groups_check
from tests import fake_entra as entra
from tests import fake_graph as fake

TID, OID = entra.TENANT_ID, entra.OID
GROUPS = [f"{n:08x}-0000-4000-8000-00000000000a" for n in range(45)]


def test_it_answers_which_of_the_asked_groups_the_user_belongs_to(fake_graph):
    fake_graph.member(TID, OID, GROUPS[1], GROUPS[7])
    answer = member_groups_check(tid=TID, oid=OID, group_ids=GROUPS[:10])
    assert answer.members == {GROUPS[1], GROUPS[7]}
    assert answer.checked == set(GROUPS[:10])
    assert answer.failure is None
    assert answer.calls == 1
    assert [check.group_ids for check in fake_graph.checks] == [tuple(GROUPS[:10])]
    assert fake_graph.token_requests == [TID]


def test_it_asks_at_most_twenty_groups_per_call(fake_graph):
    fake_graph.member(TID, OID, GROUPS[0], GROUPS[44])
    answer = member_groups_check(tid=TID, oid=OID, group_ids=GROUPS)
    assert answer.members == {GROUPS[0], GROUPS[44]}
    assert [len(check.group_ids) for check in fake_graph.checks] == [20, 20, 5]
    assert {group for check in fake_graph.checks for group in check.group_ids} == set(GROUPS)
    assert fake_graph.token_requests == [TID]  # one token for every call


def test_the_token_is_for_the_users_own_directory(fake_graph):
    fake_graph.member(entra.SECOND_TENANT_ID, OID, GROUPS[0])
    assert member_groups_check(tid=TID, oid=OID, group_ids=GROUPS[:1]).members == set()
    second = member_groups_check(tid=entra.SECOND_TENANT_ID, oid=OID, group_ids=GROUPS[:1])
    assert second.members == {GROUPS[0]}
    assert fake_graph.token_requests == [TID, entra.SECOND_TENANT_ID]
    assert [check.tid for check in fake_graph.checks] == [TID, entra.SECOND_TENANT_ID]


def test_group_ids_are_compared_in_their_canonical_lower_case(fake_graph):
    fake_graph.member(TID, OID, GROUPS[3])
    answer = member_groups_check(tid=TID, oid=OID, group_ids=[GROUPS[3].upper()])
    assert answer.members == {GROUPS[3]}
    assert fake_graph.checks[0].group_ids == (GROUPS[3],)


def test_no_group_asked_costs_no_call(fake_graph):
    assert member_groups_check(tid=TID, oid=OID, group_ids=[]).checked == set()
    assert fake_graph.checks == [] and fake_graph.token_requests == []


# --- the cache -----------------------------------------------------------------------------------
def test_a_second_check_within_the_cache_time_asks_graph_nothing(fake_graph):
    fake_graph.member(TID, OID, GROUPS[1])
    member_groups_check(tid=TID, oid=OID, group_ids=GROUPS[:3])
    again = member_groups_check(tid=TID, oid=OID, group_ids=GROUPS[:3])
    assert again.members == {GROUPS[1]} and again.calls == 0
    assert len(fake_graph.checks) == 1


def test_only_groups_not_yet_cached_are_asked(fake_graph):
    fake_graph.member(TID, OID, GROUPS[1], GROUPS[4])
    member_groups_check(tid=TID, oid=OID, group_ids=GROUPS[:3])
    answer = member_groups_check(tid=TID, oid=OID, group_ids=GROUPS[:5])
    assert answer.members == {GROUPS[1], GROUPS[4]}
    assert fake_graph.checks[1].group_ids == tuple(GROUPS[3:5])


def test_the_cached_answer_expires_after_graph_cache_seconds(fake_graph, settings, freeze_clock):
    settings.GRAPH_CACHE_SECONDS = 300
    clock = freeze_clock(GraphClient, at=time.time())
    member_groups_check(tid=TID, oid=OID, group_ids=GROUPS[:2])
    clock.advance(299)
    member_groups_check(tid=TID, oid=OID, group_ids=GROUPS[:2])
    assert len(fake_graph.checks) == 1
    fake_graph.member(TID, OID, GROUPS[0])  # a membership that changed meanwhile
    clock.advance(2)
    assert member_groups_check(tid=TID, oid=OID, group_ids=GROUPS[:2]).members == {GROUPS[0]}
    assert len(fake_graph.checks) == 2


def test_groups_added_to_a_cached_answer_expire_with_it(fake_graph, freeze_clock):
    clock = freeze_clock(GraphClient, at=time.time())
    member_groups_check(tid=TID, oid=OID, group_ids=GROUPS[:1])
    clock.advance(200)
    member_groups_check(tid=TID, oid=OID, group_ids=GROUPS[:2])  # asks GROUPS[1] only
    clock.advance(101)
    member_groups_check(tid=TID, oid=OID, group_ids=GROUPS[:2])
    assert [check.group_ids for check in fake_graph.checks][-1] == tuple(GROUPS[:2])


def test_a_cache_time_of_zero_asks_graph_every_time(fake_graph, settings):
    settings.GRAPH_CACHE_SECONDS = 0
    member_groups_check(tid=TID, oid=OID, group_ids=GROUPS[:1])
    member_groups_check(tid=TID, oid=OID, group_ids=GROUPS[:1])
    assert len(fake_graph.checks) == 2


def test_each_user_has_an_answer_of_their_own(fake_graph):
    fake_graph.member(TID, OID, GROUPS[0])
    member_groups_check(tid=TID, oid=OID, group_ids=GROUPS[:1])
    other = member_groups_check(tid=TID, oid=entra.AUDIENCE_ID, group_ids=GROUPS[:1])
    assert other.members == set() and other.calls == 1


# --- failures: nothing proved, a reason, never longer than the deadline ---------------------------
@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        (fake.DOWN, graph.UNAVAILABLE),
        (fake.THROTTLED, graph.THROTTLED),
        (fake.FORBIDDEN, graph.REFUSED),
        (fake.GARBAGE, graph.INVALID_ANSWER),
    ],
)
def test_a_failing_graph_proves_nothing_and_says_why(fake_graph, mode, reason):
    fake_graph.member(TID, OID, GROUPS[0])
    fake_graph.graph_mode = mode
    answer = member_groups_check(tid=TID, oid=OID, group_ids=GROUPS[:3])
    assert answer.failure == reason
    assert answer.members == set() and answer.checked == set()


@pytest.mark.parametrize("mode", [fake.DOWN, fake.THROTTLED, fake.FORBIDDEN, fake.GARBAGE])
def test_no_token_proves_nothing(fake_graph, mode):
    fake_graph.token_mode = mode
    answer = member_groups_check(tid=TID, oid=OID, group_ids=GROUPS[:3])
    assert answer.failure == graph.TOKEN_FAILED and answer.members == set()
    assert fake_graph.checks == []


def test_a_wrong_client_secret_gets_no_token(fake_graph, settings):
    settings.GRAPH_CLIENT_SECRET = "not-the-secret"
    assert member_groups_check(tid=TID, oid=OID, group_ids=GROUPS[:1]).failure == graph.TOKEN_FAILED


def test_the_token_is_asked_for_the_graph_endpoints_default_scope(fake_graph):
    member_groups_check(tid=TID, oid=OID, group_ids=GROUPS[:1])
    assert fake_graph.scopes == [f"{fake_graph.url}/.default"]


def test_an_unreachable_graph_proves_nothing(fake_graph, settings):
    settings.GRAPH_ENDPOINT = "https://127.0.0.1:1"  # the token still comes from the fake
    assert member_groups_check(tid=TID, oid=OID, group_ids=GROUPS[:1]).failure == graph.UNAVAILABLE


def test_an_unreachable_token_endpoint_proves_nothing(fake_graph, settings):
    settings.GRAPH_AUTHORITY = "https://127.0.0.1:1"
    assert member_groups_check(tid=TID, oid=OID, group_ids=GROUPS[:1]).failure == graph.TOKEN_FAILED
    assert fake_graph.checks == []


@pytest.mark.parametrize(
    "body",
    [
        b'{"value": "not a list"}',
        b'{"value": [1, 2]}',
        b'["a list"]',
        b'{"value": ["ffffffff-0000-4000-8000-000000000000"]}',  # an id it was not asked about
        b'{"no": "value"}',
        b"[" * 100_000,
    ],
)
def test_an_answer_of_the_wrong_shape_proves_nothing(fake_graph, monkeypatch, body):
    monkeypatch.setattr(fake_graph, "_check", lambda oid, headers, raw: (200, {}, body))
    # The token endpoint is untouched: only checkMemberGroups answers garbage.
    answer = member_groups_check(tid=TID, oid=OID, group_ids=GROUPS[:2])
    assert answer.failure == graph.INVALID_ANSWER and answer.members == set()


def test_an_oversized_answer_proves_nothing(fake_graph, monkeypatch):
    body = b'{"value": [], "padding": "' + b"x" * (GraphClient.max_bytes + 1) + b'"}'
    monkeypatch.setattr(fake_graph, "_check", lambda oid, headers, raw: (200, {}, body))
    assert member_groups_check(tid=TID, oid=OID, group_ids=GROUPS[:1]).failure == graph.INVALID_ANSWER


@pytest.mark.parametrize("slow", ["token", "graph"])
def test_a_slow_graph_costs_at_most_the_deadline(fake_graph, slow):
    fake_graph.member(TID, OID, GROUPS[0])
    fake_graph.delay = 10
    setattr(fake_graph, f"{slow}_mode", fake.SLOW)
    started = time.perf_counter()
    answer = member_groups_check(tid=TID, oid=OID, group_ids=GROUPS[:1])
    elapsed = time.perf_counter() - started
    assert answer.failure == graph.TIMEOUT and answer.members == set()
    assert elapsed < GraphClient.timeout + 0.3, elapsed


def test_calls_answered_before_the_deadline_still_prove_their_groups(fake_graph, monkeypatch):
    fake_graph.member(TID, OID, GROUPS[0], GROUPS[30])
    answer_check = fake_graph._check

    def second_call_hangs(oid, headers, raw):
        if len(fake_graph.checks) >= 1:
            fake_graph.release.wait(10)
        return answer_check(oid, headers, raw)

    monkeypatch.setattr(fake_graph, "_check", second_call_hangs)
    answer = member_groups_check(tid=TID, oid=OID, group_ids=GROUPS[:40])
    assert answer.failure == graph.TIMEOUT
    assert answer.checked == set(GROUPS[:20])
    assert answer.members == {GROUPS[0]}  # GROUPS[30] was never answered, so it is not proved


# --- back-off ------------------------------------------------------------------------------------
def test_after_a_429_graph_is_left_alone_for_its_retry_after(fake_graph, freeze_clock, caplog):
    clock = freeze_clock(GraphClient, at=time.time())
    fake_graph.graph_mode = fake.THROTTLED
    fake_graph.retry_after = "7"
    assert member_groups_check(tid=TID, oid=OID, group_ids=GROUPS[:1]).failure == graph.THROTTLED
    fake_graph.graph_mode = fake.OK
    clock.advance(6)
    with caplog.at_level(logging.INFO, logger="accounts.graph"):
        waiting = member_groups_check(tid=TID, oid=OID, group_ids=GROUPS[:1])
    assert (waiting.failure, waiting.backoff_from) == (graph.BACKOFF, graph.THROTTLED)
    assert len(fake_graph.checks) == 1
    assert "throttled" in caplog.text
    clock.advance(2)
    assert member_groups_check(tid=TID, oid=OID, group_ids=GROUPS[:1]).failure is None
    assert len(fake_graph.checks) == 2


def test_a_retry_after_beyond_a_minute_is_capped(fake_graph, freeze_clock):
    clock = freeze_clock(GraphClient, at=time.time())
    fake_graph.graph_mode, fake_graph.retry_after = fake.THROTTLED, "86400"
    member_groups_check(tid=TID, oid=OID, group_ids=GROUPS[:1])
    fake_graph.graph_mode = fake.OK
    clock.advance(GraphClient.max_retry_after + 1)
    assert member_groups_check(tid=TID, oid=OID, group_ids=GROUPS[:1]).failure is None


def test_a_backing_off_directory_still_answers_from_the_cache(fake_graph, freeze_clock):
    clock = freeze_clock(GraphClient, at=time.time())
    fake_graph.member(TID, OID, GROUPS[0])
    member_groups_check(tid=TID, oid=OID, group_ids=GROUPS[:1])
    fake_graph.graph_mode = fake.FORBIDDEN
    assert member_groups_check(tid=TID, oid=OID, group_ids=GROUPS[:2]).failure == graph.REFUSED
    clock.advance(1)
    answer = member_groups_check(tid=TID, oid=OID, group_ids=GROUPS[:2])
    assert answer.failure == graph.BACKOFF
    assert answer.members == {GROUPS[0]} and answer.checked == {GROUPS[0]}


def test_back_off_is_per_directory(fake_graph):
    fake_graph.graph_mode = fake.FORBIDDEN
    member_groups_check(tid=TID, oid=OID, group_ids=GROUPS[:1])
    fake_graph.graph_mode = fake.OK
    assert member_groups_check(tid=entra.SECOND_TENANT_ID, oid=OID, group_ids=GROUPS[:1]).failure is None


# --- the credential ------------------------------------------------------------------------------
def test_without_a_secret_the_credential_is_a_managed_identity(settings):
    from azure.identity import ClientSecretCredential, ManagedIdentityCredential

    settings.GRAPH_CLIENT_SECRET = None
    settings.GRAPH_CLIENT_ID = None
    assert isinstance(graph_credential(tid=TID, timeout=1), ManagedIdentityCredential)
    settings.GRAPH_CLIENT_ID = fake.CLIENT_ID
    settings.GRAPH_CLIENT_SECRET = fake.CLIENT_SECRET
    settings.GRAPH_AUTHORITY = "https://login.microsoftonline.us"
    assert isinstance(graph_credential(tid=TID, timeout=1), ClientSecretCredential)


def test_neither_the_secret_nor_a_token_reaches_the_logs(fake_graph, caplog):
    fake_graph.member(TID, OID, GROUPS[0])
    with ExitStack() as stack:
        for name in (None, "azure", "msal", "urllib3", "accounts.graph"):
            stack.enter_context(caplog.at_level(logging.DEBUG, logger=name))
        member_groups_check(tid=TID, oid=OID, group_ids=GROUPS[:1])
        fake_graph.graph_mode = fake.FORBIDDEN
        cache.clear()
        member_groups_check(tid=TID, oid=OID, group_ids=GROUPS[:1])
        graph_client.clear()
        fake_graph.token_mode = fake.GARBAGE
        member_groups_check(tid=entra.SECOND_TENANT_ID, oid=OID, group_ids=GROUPS[:1])
    assert "checkMemberGroups" in caplog.text or "graph" in caplog.text.lower(), "the logs were captured"
    assert fake_graph.tokens, "a token was issued"
    assert fake.CLIENT_SECRET not in caplog.text
    assert not any(token in caplog.text for token in fake_graph.tokens)
