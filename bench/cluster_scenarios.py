"""The cluster's change scenarios (a rotation, a revocation, a grant, a tenant) and what every
scenario shares: the cluster, the row, the bounded waits. The faults are in cluster_faults.py.

Changes are made the way operators make them (``rotate_keys``, ``import_policy``, the portal's
``grants_revoke``) inside ``manage.py shell -c``, which prints the wall-clock time right after the
command returned, that is after its transaction committed: settling times count from there. Every
wait is bounded; a scenario that does not settle within its bound says so in its row.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.cluster_load import Load, Tally, exchange_direct, jwks_kids
from bench.cluster_stack import Stack
from tests import fake_entra as entra

POLL = 0.05
# A change settled once every instance shows it; these extra rounds catch one that flips back.
CONFIRM_ROUNDS = 5


@dataclass
class Cluster:
    """What the scenarios act on and observe."""

    stack: Stack
    load: Load
    fake: entra.FakeEntra
    web_ports: dict[str, int]
    haproxy_socket: Path
    redis_port: int
    database: str
    # Probe tokens: a load user's (acme), the grant scenario's (beta), the tenant scenario's (gamma).
    tokens: dict[str, str]
    seconds: float
    publish_lead: int
    check_interval: int
    jwks_max_age: int
    work: Path


@dataclass
class Row:
    scenario: str
    requests: int
    errors: str
    verification_failures: str
    settle: str
    notes: str

    def markdown(self) -> str:
        cells = (
            self.scenario,
            f"{self.requests:,}",
            self.errors,
            self.verification_failures,
            self.settle,
            self.notes,
        )
        return "| " + " | ".join(cells) + " |"


def row(name: str, tally: Tally, *, settle: float | None, notes: str, bound: float | None = None) -> Row:
    """A table row; ``bound`` None means the scenario has nothing to settle."""
    if bound is None:
        settled = "-"
    elif settle is None:
        settled = f"not within {bound:.0f} s"
    else:
        settled = f"{settle:.2f}"
    return Row(name, tally.requests, tally.errors_text(), tally.verification_text(), settled, notes)


def hold(cluster: Cluster, since: float) -> None:
    """Let the load run until ``cluster.seconds`` have passed since ``since`` (time.monotonic)."""
    remaining = cluster.seconds - (time.monotonic() - since)
    if remaining > 0:
        time.sleep(remaining)


def poll_until(condition: Callable[[], bool], *, timeout: float) -> float | None:
    """Seconds until ``condition`` held (checked every 50 ms), None after ``timeout``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(POLL)
    return None


class Change:
    """``code`` run in ``manage.py shell -c``, read until it prints the time right after it returned.

    Settling is measured from ``committed``, taken in the changing process as soon as the command
    returned (its transaction committed), not when the process exits: a Django process takes a
    while to shut down, and the instances are probed meanwhile. ``finish`` waits for the exit.
    """

    def __init__(self, stack: Stack, code: str) -> None:
        script = f"{code}\nimport time\nprint('committed_at', repr(time.time()), flush=True)"
        self.process = stack.manage_spawn("shell", "-c", script)
        assert self.process.stdout is not None
        lines = []
        for line in self.process.stdout:
            lines.append(line)
            if line.startswith("committed_at "):
                break
        self.output = "".join(lines)
        if not lines or not lines[-1].startswith("committed_at "):
            self.finish()
            raise RuntimeError(f"the change printed no time:\n{self.output}")
        self.committed = float(lines[-1].split()[1])

    def finish(self) -> None:
        assert self.process.stdout is not None
        rest = self.process.stdout.read()
        if self.process.wait(timeout=120) != 0:
            raise RuntimeError(f"the change failed:\n{self.output}{rest}")


def active_kid(cluster: Cluster) -> str:
    status, kid = exchange_direct(next(iter(cluster.web_ports.values())), cluster.tokens["load"])
    if status != 200 or kid is None:
        raise RuntimeError(f"no token from the first instance: {status} {kid}")
    return kid


def every_instance(cluster: Cluster, check: Callable[[int], bool]) -> bool:
    return all(check(port) for port in cluster.web_ports.values())


def settle_after_commit(
    cluster: Cluster, committed: float, check: Callable[[int], bool], *, timeout: float
) -> tuple[float | None, int]:
    """Seconds from ``committed`` until ``check`` held on every instance, and relapses after that."""
    settled, relapses = settle_each(cluster, committed, {"": check}, timeout=timeout)
    return settled[""], relapses


def settle_each(
    cluster: Cluster, committed: float, checks: dict[str, Callable[[int], bool]], *, timeout: float
) -> tuple[dict[str, float | None], int]:
    """For each check, seconds from ``committed`` (wall clock) until it held on every instance.

    The instances are probed in turn, every check on each, and each instance's first success is
    kept. Once all hold, a few more rounds count the probes where one no longer does (a relapse:
    stale data served again).
    """
    ports = list(cluster.web_ports.values())
    first: dict[str, dict[int, float]] = {name: {} for name in checks}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(len(times) < len(ports) for times in first.values()):
        for port in ports:
            for name, check in checks.items():
                if port not in first[name] and check(port):
                    first[name][port] = time.time()
        time.sleep(POLL)
    settled = {
        name: max(times.values()) - committed if len(times) == len(ports) else None
        for name, times in first.items()
    }
    if any(value is None for value in settled.values()):
        return settled, 0
    relapses = sum(
        not check(port) for _ in range(CONFIRM_ROUNDS) for port in ports for check in checks.values()
    )
    return settled, relapses


# --- the scenarios -------------------------------------------------------------------------------
def steady(cluster: Cluster) -> Row:
    tally = cluster.load.begin()
    hold(cluster, tally.started)
    rate = tally.requests / (time.monotonic() - tally.started)
    return row("steady load, no fault", tally, settle=None, notes=f"{rate:.0f} exchanges/s through HAProxy")


def rotation(cluster: Cluster) -> Row:
    tally = cluster.load.begin()
    previous = active_kid(cluster)
    change = Change(
        cluster.stack,
        "from django.core.management import call_command\ncall_command('rotate_keys', force=True)",
    )
    successor = re.search(r"created (\S+)", change.output)
    if successor is None:
        raise RuntimeError(f"rotate_keys --force created nothing:\n{change.output}")
    kid = successor.group(1)
    bound = cluster.publish_lead + 5 + 2 * cluster.check_interval + 30
    settled, relapses = settle_each(
        cluster,
        change.committed,
        {
            "published": lambda port: kid in (jwks_kids(port) or set()),
            "signing": lambda port: exchange_direct(port, cluster.tokens["load"])[1] == kid,
        },
        timeout=bound,
    )
    change.finish()
    published, signing = settled["published"], settled["signing"]
    hold(cluster, tally.started)
    notes = (
        f"successor published by 3/3 after {seconds_text(published)}, signing on 3/3 after "
        f"{seconds_text(signing)} (publish lead {cluster.publish_lead} s + 5 s, beat every "
        f"{cluster.check_interval} s); tokens by kid: {_kids_text(tally, previous, kid)}"
    )
    return row(
        "forced rotation to activation",
        tally,
        settle=signing,
        notes=notes + relapsed_text(relapses),
        bound=bound,
    )


def revoke(cluster: Cluster) -> Row:
    tally = cluster.load.begin()
    kid = active_kid(cluster)
    change = Change(
        cluster.stack,
        f"from django.core.management import call_command\ncall_command('rotate_keys', revoke={kid!r})",
    )

    def not_signing(port: int) -> bool:
        status, signer = exchange_direct(port, cluster.tokens["load"])
        return status == 200 and signer != kid

    settled, relapses = settle_each(
        cluster,
        change.committed,
        {"unpublished": lambda port: kid not in (jwks_kids(port) or {kid}), "not signing": not_signing},
        timeout=30,
    )
    change.finish()
    gone_from_jwks, stopped_signing = settled["unpublished"], settled["not signing"]
    settle = (
        None if gone_from_jwks is None or stopped_signing is None else max(gone_from_jwks, stopped_signing)
    )
    # Until every verifier's cached JWKS has expired once (it then learns the new key), so that the
    # refusals a revocation causes downstream are counted in this row, not the next one.
    time.sleep(max(0.0, change.committed + cluster.jwks_max_age + 2 - time.time()))
    hold(cluster, tally.started)
    notes = (
        f"active key revoked: unpublished by 3/3 after {seconds_text(gone_from_jwks)}, no instance signs "
        f"with it after {seconds_text(stopped_signing)} (bound 10 s); a new key signs at once, unannounced"
    )
    return row("emergency revoke", tally, settle=settle, notes=notes + relapsed_text(relapses), bound=30)


def grant_revoked(cluster: Cluster) -> Row:
    return _refusal(
        cluster,
        "grant revoked (portal service)",
        token=cluster.tokens["grant"],
        code=(
            "from django.utils import timezone\nfrom authz.models import Grant\n"
            "from authz.portal import grants_revoke\n"
            "print(grants_revoke(grants=Grant.objects.filter(tenant__slug='beta'), "
            "reason='cluster bench', by=None, now=timezone.now()))"
        ),
        what="`grants_revoke` of the only grant in tenant beta",
    )


def tenant_suspended(cluster: Cluster) -> Row:
    changed = cluster.work / "tenant-suspended.json"
    changed.write_text(
        json.dumps({"tenants": [{"slug": "gamma", "name": "Gamma", "status": "suspended", "features": []}]})
    )
    return _refusal(
        cluster,
        "tenant suspended (import_policy)",
        token=cluster.tokens["tenant"],
        code=(
            "from django.core.management import call_command\n"
            f"call_command('import_policy', {str(changed)!r})"
        ),
        what="`import_policy` of a file setting tenant gamma `suspended`",
    )


def _refusal(cluster: Cluster, name: str, *, token: str, code: str, what: str) -> Row:
    tally = cluster.load.begin()
    accepted = every_instance(cluster, lambda port: exchange_direct(port, token)[0] == 200)
    if not accepted:
        raise RuntimeError(f"{name}: the probe user is refused before the change")
    change = Change(cluster.stack, code)
    settle, relapses = settle_after_commit(
        cluster, change.committed, lambda port: exchange_direct(port, token)[0] == 400, timeout=30
    )
    change.finish()
    hold(cluster, tally.started)
    notes = f"{what}; every instance refuses (400) {seconds_text(settle)} after the commit"
    return row(name, tally, settle=settle, notes=notes + relapsed_text(relapses), bound=30)


# --- small readers -------------------------------------------------------------------------------
def seconds_text(value: float | None) -> str:
    return "never" if value is None else f"{value:.2f} s"


def relapsed_text(relapses: int) -> str:
    return f"; RELAPSED in {relapses} later probes" if relapses else ""


def _kids_text(tally: Tally, previous: str, successor: str) -> str:
    names = {previous: "old", successor: "new"}
    return ", ".join(f"{names.get(kid, kid[:8])} {count:,}" for kid, count in tally.kids.most_common())
