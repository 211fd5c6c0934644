"""Microsoft Graph for group overage: which of some groups a user belongs to, within one deadline.

Past 200 groups Entra leaves ``groups`` out of the access token (``_claim_names``/``hasgroups``).
``member_groups_check`` then asks ``POST {GRAPH_ENDPOINT}/v1.0/users/{oid}/checkMemberGroups``
(transitive membership) about the group ids the caller names, at most 20 per call, with an app-only
Graph token for the user's own directory: client credentials through azure-identity (a client
secret, or a managed identity when no secret is set). The application needs ``User.Read.All`` and
``GroupMember.Read.All`` with admin consent in each directory.

Graph can only ever prove a membership, never cost an exchange more than ``timeout``:
- one deadline covers the token and every call: the work runs on a small thread pool and the caller
  stops waiting at the deadline, whatever a slow or dripping server does (the abandoned work checks
  the deadline before each step, and its sockets time out soon after);
- answers are cached per (``tid``, ``oid``) for ``GRAPH_CACHE_SECONDS`` in Django's cache (Redis in
  production: a Redis outage only loses the caching);
- a directory whose Graph throttled (429: its ``Retry-After``), refused, failed or ran out of time is
  not asked again for a short while, in every worker, so an outage costs one slow exchange per
  directory and interval instead of every exchange;
- every failure comes back as the answer's ``failure`` (a stable reason for the decision log) with
  whatever was answered before it: nothing is raised, and unanswered ids prove nothing.

The calls go through ``requests`` (no redirects, explicit timeouts, a size cap on the answer); the
token through azure-identity's pipeline with its retries off and the same timeouts. azure-identity is
imported only when a token is first needed, so deployments without ``GRAPH_OVERAGE`` never load it.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import requests
from django.conf import settings
from django.core.cache import cache

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

logger = logging.getLogger(__name__)

# Stable reasons in ``MemberGroups.failure`` (the decision log says ``graph.<reason>``).
TIMEOUT = "timeout"  # the deadline passed before Graph answered everything
THROTTLED = "throttled"  # Graph answered 429
REFUSED = "refused"  # Graph answered 401/403: the app lacks consent or permissions in the directory
TOKEN_FAILED = "token_failed"  # no app-only token for the directory (refused, unreachable, garbage)
UNAVAILABLE = "unavailable"  # unreachable, or an error status
INVALID_ANSWER = "invalid_answer"  # an answer that is not the documented shape
BACKOFF = "backoff"  # not asked: this directory's Graph failed moments ago


@dataclass(frozen=True)
class MemberGroups:
    """What Graph said about some group ids: those it answered for, and of those the user's groups."""

    checked: frozenset[str] = frozenset()
    members: frozenset[str] = frozenset()
    calls: int = 0  # checkMemberGroups calls this answer cost (0: from the cache)
    failure: str | None = None  # why some asked ids are unchecked (one of the reasons above)
    backoff_from: str | None = None  # with BACKOFF: the earlier failure it waits out


@dataclass
class _Progress:
    """What the pool's work has found so far; read by the caller even after it stopped waiting."""

    answered: dict[str, bool] = field(default_factory=dict)
    calls: int = 0
    failure: str | None = None
    retry_after: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, asked: list[str], members: set[str]) -> None:
        with self.lock:
            self.calls += 1
            self.answered.update({group: group in members for group in asked})

    def snapshot(self) -> tuple[dict[str, bool], int]:
        with self.lock:
            return dict(self.answered), self.calls


class _Failed(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class GraphClient:
    """checkMemberGroups with an app-only token per directory, cached, within ``timeout`` seconds.

    Seams for tests are class attributes: ``clock`` (cache and back-off ages, a ``time.time``
    reading), ``timeout``.
    """

    clock: Callable[[], float] = time.time
    timeout = 2.0  # seconds for the token and every call of one exchange together
    ids_per_call = 20  # Graph's limit for checkMemberGroups
    max_bytes = 64 * 1024  # an answer names at most 20 GUIDs
    workers = 4
    failure_backoff = 5  # seconds a directory is left alone after a failure or a timeout
    refused_backoff = 60  # ... after Graph refused (401/403: consent is not granted in seconds)
    max_retry_after = 60  # a 429's Retry-After is honoured up to this

    def __init__(self) -> None:
        self._credentials: dict[tuple[str | None, ...], TokenCredential] = {}
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid: int | None = None
        self._local = threading.local()

    def clear(self) -> None:
        """Forget the credentials and their tokens (tests; a settings change)."""
        with self._lock:
            self._credentials = {}

    # --- the use ---------------------------------------------------------------------------------
    def member_groups_check(self, *, tid: str, oid: str, group_ids: Iterable[str]) -> MemberGroups:
        """Which of ``group_ids`` user ``oid`` of directory ``tid`` is a transitive member of."""
        asked = sorted({group.lower() for group in group_ids})
        if not asked:
            return MemberGroups()
        now = self.clock()
        entry_key = f"graph:member-groups:{tid}:{oid}"
        entry = _entry_read(cache.get(entry_key), now)
        known = {group: entry["checked"][group] for group in asked if group in entry["checked"]}
        missing = [group for group in asked if group not in known]
        failure: str | None = None
        backoff_from: str | None = None
        calls = 0
        if missing:
            backoff_key = f"graph:backoff:{tid}"
            backoff = cache.get(backoff_key)
            if isinstance(backoff, tuple) and len(backoff) == 2 and backoff[0] > now:
                failure, backoff_from = BACKOFF, str(backoff[1])
                logger.info("Graph of directory %s not asked: it failed moments ago (%s)", tid, backoff_from)
            else:
                answered, calls, failure, retry_after = self._ask(tid=tid, oid=oid, group_ids=missing)
                known.update(answered)
                if answered:
                    self._remember(entry_key, entry, answered, now)
                if failure is not None:
                    seconds = self._backoff_seconds(failure, retry_after)
                    cache.set(backoff_key, (now + seconds, failure), timeout=math.ceil(seconds))
                    logger.warning(
                        "Graph of directory %s failed (%s) after %d calls; left alone for %g s",
                        tid,
                        failure,
                        calls,
                        seconds,
                    )
        return MemberGroups(
            checked=frozenset(known),
            members=frozenset(group for group, member in known.items() if member),
            calls=calls,
            failure=failure,
            backoff_from=backoff_from,
        )

    def _remember(self, key: str, entry: dict[str, Any], answered: dict[str, bool], now: float) -> None:
        seconds = settings.GRAPH_CACHE_SECONDS
        if seconds <= 0:
            return
        if entry["until"] is None:  # a new entry; ids added later expire with the first ones
            entry = {"until": now + seconds, "checked": {}}
        entry["checked"].update(answered)
        cache.set(key, entry, timeout=max(1, math.ceil(entry["until"] - now)))

    def _backoff_seconds(self, failure: str, retry_after: float | None) -> float:
        if failure == THROTTLED:
            return min(max(retry_after or self.failure_backoff, 1.0), self.max_retry_after)
        if failure == REFUSED:  # azure-identity's errors do not tell a refused token from an outage
            return self.refused_backoff
        return self.failure_backoff

    # --- the work on the pool ------------------------------------------------------------------
    def _ask(
        self, *, tid: str, oid: str, group_ids: list[str]
    ) -> tuple[dict[str, bool], int, str | None, float | None]:
        deadline = time.monotonic() + self.timeout
        progress = _Progress()
        future = self._executor().submit(self._work, tid, oid, group_ids, deadline, progress)
        timed_out = False
        try:
            future.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            future.cancel()  # still queued behind abandoned work: never start it
            timed_out = True
        answered, calls = progress.snapshot()
        failure = progress.failure or (TIMEOUT if timed_out else None)
        return answered, calls, failure, progress.retry_after

    def _executor(self) -> ThreadPoolExecutor:
        # Made in the process that uses it: gunicorn preloads the app and forks workers, and a pool's
        # threads do not survive a fork.
        with self._lock:
            if self._pool is None or self._pool_pid != os.getpid():
                self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="graph")
                self._pool_pid = os.getpid()
            return self._pool

    def _work(self, tid: str, oid: str, group_ids: list[str], deadline: float, progress: _Progress) -> None:
        try:
            token = self._token(tid, deadline)
            for start in range(0, len(group_ids), self.ids_per_call):
                chunk = group_ids[start : start + self.ids_per_call]
                progress.add(chunk, self._check(token, oid, chunk, deadline))
        except _Failed as failed:
            progress.failure, progress.retry_after = failed.reason, failed.retry_after
        except Exception as error:  # a library's surprise must fail closed, not escape a pool thread
            logger.warning("Graph check failed unexpectedly (%s)", error.__class__.__name__)
            progress.failure = UNAVAILABLE

    def _token(self, tid: str, deadline: float) -> str:
        from azure.core.exceptions import AzureError

        _remaining(deadline)
        try:
            return self._credential(tid).get_token(f"{settings.GRAPH_ENDPOINT}/.default").token
        except (AzureError, ValueError) as error:  # MSAL raises ValueError when discovery fails
            # azure-identity logs the details itself; the decision log gets the reason.
            logger.warning("no Graph token for directory %s (%s)", tid, error.__class__.__name__)
            raise _Failed(TOKEN_FAILED) from None

    def _credential(self, tid: str) -> TokenCredential:
        key = (settings.GRAPH_AUTHORITY, settings.GRAPH_CLIENT_ID, settings.GRAPH_CLIENT_SECRET, tid)
        with self._lock:
            credential = self._credentials.get(key)
            if credential is None:
                credential = self._credentials[key] = graph_credential(tid=tid, timeout=self.timeout)
            return credential

    def _check(self, token: str, oid: str, group_ids: list[str], deadline: float) -> set[str]:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        try:
            remaining = _remaining(deadline)
            response = session.post(
                f"{settings.GRAPH_ENDPOINT}/v1.0/users/{oid}/checkMemberGroups",
                json={"groupIds": group_ids},
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                timeout=(remaining, remaining),
                allow_redirects=False,
                stream=True,
            )
            with response:
                if response.status_code == 429:
                    raise _Failed(THROTTLED, _retry_after(response.headers.get("Retry-After")))
                if response.status_code in (401, 403):
                    raise _Failed(REFUSED)
                if response.status_code != 200:
                    raise _Failed(UNAVAILABLE)
                body = b""
                for chunk in response.iter_content(8192):
                    _remaining(deadline)  # a server dripping bytes must not hold this thread
                    body += chunk
                    if len(body) > self.max_bytes:
                        raise _Failed(INVALID_ANSWER)
        except requests.Timeout:
            raise _Failed(TIMEOUT) from None
        except requests.RequestException:
            raise _Failed(UNAVAILABLE) from None
        return _members_parse(body, asked=group_ids)


def _remaining(deadline: float) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise _Failed(TIMEOUT)
    return remaining


def _retry_after(value: str | None) -> float | None:
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: the default back-off will do
    return seconds if seconds is not None and math.isfinite(seconds) else None


def _members_parse(body: bytes, *, asked: list[str]) -> set[str]:
    """The asked ids in a checkMemberGroups answer (``{"value": [ids]}``); anything else is garbage."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise _Failed(INVALID_ANSWER) from None
    value = document.get("value") if isinstance(document, dict) else None
    if not isinstance(value, list) or not all(isinstance(group, str) for group in value):
        raise _Failed(INVALID_ANSWER)
    members = {group.lower() for group in value}
    if not members <= set(asked):  # Graph answers only ids it was asked about
        raise _Failed(INVALID_ANSWER)
    return members


def _entry_read(value: object, now: float) -> dict[str, Any]:
    """A cached answer still fresh at ``now``, or an empty one; a malformed entry reads as a miss."""
    if (
        isinstance(value, dict)
        and isinstance(value.get("until"), float | int)
        and value["until"] > now
        and isinstance(value.get("checked"), dict)
    ):
        return {"until": value["until"], "checked": dict(value["checked"])}
    return {"until": None, "checked": {}}


def graph_credential(*, tid: str, timeout: float) -> TokenCredential:
    """The app-only credential for directory ``tid``: the client secret if set, else a managed identity.

    A managed identity gets tokens only in the directory it lives in; serving several directories
    needs a multi-tenant app registration with a secret (and admin consent in each directory).
    """
    from azure.identity import ClientSecretCredential, ManagedIdentityCredential

    # Our deadline bounds the whole check; the pipeline's own retries would only spend it.
    transport: dict[str, Any] = {"retry_total": 0, "connection_timeout": timeout, "read_timeout": timeout}
    client_id: str | None = settings.GRAPH_CLIENT_ID
    secret: str | None = settings.GRAPH_CLIENT_SECRET
    if secret and client_id:  # the settings refuse a secret without a client id
        return ClientSecretCredential(
            tenant_id=tid,
            client_id=client_id,
            client_secret=secret,
            authority=settings.GRAPH_AUTHORITY,
            # The authority is the operator's setting, so MSAL need not ask login.microsoftonline.com
            # whether it is a known one (it never asks about Microsoft's own clouds anyway).
            disable_instance_discovery=True,
            **transport,
        )
    return ManagedIdentityCredential(client_id=client_id, **transport)


graph_client = GraphClient()


def member_groups_check(*, tid: str, oid: str, group_ids: Iterable[str]) -> MemberGroups:
    """Which of ``group_ids`` the user is a transitive member of, as far as Graph answered in time."""
    return graph_client.member_groups_check(tid=tid, oid=oid, group_ids=group_ids)
