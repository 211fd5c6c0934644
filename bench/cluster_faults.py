"""The cluster's fault scenarios: an instance killed, Redis restarted, PostgreSQL connections killed,
a second beat, an instance started while Entra is down. Each returns one row of the table."""

from __future__ import annotations

import re
import time

import psycopg
import redis

from bench.cluster_load import exchange_direct
from bench.cluster_scenarios import (
    Cluster,
    Row,
    hold,
    poll_until,
    relapsed_text,
    row,
    seconds_text,
    settle_after_commit,
)
from bench.cluster_stack import haproxy_servers, psql, redis_start, wait_for
from tests import fake_entra as entra


def instance_killed(cluster: Cluster, victim: str = "web2") -> Row:
    tally = cluster.load.begin()
    port = cluster.web_ports[victim]
    redispatched = _redispatched(cluster)
    killed = time.monotonic()
    cluster.stack.processes[victim].kill()
    out = poll_until(lambda: _haproxy_status(cluster, victim) == "DOWN", timeout=20)
    # As systemd would (Restart=on-failure, RestartSec=2): a new process two seconds after the death.
    time.sleep(max(0.0, 2.0 - (time.monotonic() - killed)))
    cluster.stack.start_web(victim, port)
    ready = time.monotonic() - killed
    back = poll_until(lambda: _haproxy_status(cluster, victim) == "UP", timeout=60)
    settle = None if back is None else time.monotonic() - killed
    hold(cluster, tally.started)
    notes = (
        f"{victim} SIGKILLed: out of rotation after {seconds_text(out)}; restarted at 2 s, ready at "
        f"{ready:.1f} s, back in rotation {seconds_text(settle)} after the kill; HAProxy resent "
        f"{_redispatched(cluster) - redispatched} requests to another instance"
    )
    return row("web instance SIGKILLed, restarted", tally, settle=settle, notes=notes, bound=60)


def redis_restarted(cluster: Cluster) -> Row:
    tally = cluster.load.begin()
    degraded_before = _log_count(cluster, "continuing without the cache")
    worker_log = cluster.stack.processes["worker"]
    connected_before = worker_log.log_tail(100_000_000).count("Connected to redis")
    cluster.stack.stop("redis")
    down_for = min(5.0, cluster.seconds / 2)
    time.sleep(down_for)
    redis_start(cluster.stack, cluster.redis_port)
    back = time.monotonic()
    client = redis.Redis(host="127.0.0.1", port=cluster.redis_port, db=0)
    warm = poll_until(lambda: bool(client.dbsize()), timeout=30)
    reconnected = poll_until(
        lambda: worker_log.log_tail(100_000_000).count("Connected to redis") > connected_before, timeout=30
    )
    settle = None if warm is None or reconnected is None else time.monotonic() - back
    hold(cluster, tally.started)
    degraded = _log_count(cluster, "continuing without the cache") - degraded_before
    notes = (
        f"Redis (cache, throttles, broker) stopped for {down_for:.0f} s, then started empty: {degraded:,} "
        f"cache operations failed soft meanwhile (each logged; no throttling); once it was back the cache "
        f"was written again after {seconds_text(warm)}, the worker reconnected to the broker after "
        f"{seconds_text(None if reconnected is None else settle)}; 5xx: {tally.statuses_5xx()}"
    )
    return row("Redis restarted", tally, settle=settle, notes=notes, bound=30)


def database_connections_killed(cluster: Cluster, period: float = 0.2) -> Row:
    tally = cluster.load.begin()
    sql = (
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = %s AND pid <> pg_backend_pid()"
    )
    duration = min(3.0, cluster.seconds / 2)
    terminated: list[int] = []
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as admin:
        stop = time.monotonic() + duration
        while time.monotonic() < stop:
            row_ = admin.execute(sql, [cluster.database]).fetchone()
            terminated.append(int(row_[0]) if row_ else 0)
            time.sleep(period)
    killed = time.time()
    settle, relapses = settle_after_commit(
        cluster, killed, lambda port: exchange_direct(port, cluster.tokens["load"])[0] == 200, timeout=30
    )
    hold(cluster, tally.started)
    notes = (
        f"`pg_terminate_backend` on every backend of {cluster.database} every {period:.1f} s for "
        f"{duration:.0f} s ({len(terminated)} rounds, {sum(terminated)} connections ended); every instance "
        f"exchanges again, without a restart, {seconds_text(settle)} after the last round"
    )
    return row(
        "PostgreSQL connections killed", tally, settle=settle, notes=notes + relapsed_text(relapses), bound=30
    )


def second_beat(cluster: Cluster) -> Row:
    tally = cluster.load.begin()
    second = cluster.stack.start_procfile("beat-2", "beat")
    wait_for("the second beat", lambda: "beat: Starting" in second.log_tail(20_000), timeout=60)
    before = set(_keys(cluster))
    sent_before = {name: _sent(cluster, name) for name in ("beat", "beat-2")}
    # The active key's interval has run out (as if KEY_ROTATION_INTERVAL had passed): both beats now
    # send "Rotate signing keys" every KEY_ROTATION_CHECK_INTERVAL and the worker runs them side by side.
    psql(
        "UPDATE keys_signingkey SET activated_at = activated_at - interval '400 days' WHERE phase = 'active'",
        database=cluster.database,
    )
    aged = time.time()
    bound = cluster.publish_lead + 5 + 4 * cluster.check_interval + 30
    created = poll_until(lambda: any(kid not in before for kid in _keys(cluster)), timeout=bound)
    successor = next((kid for kid in _keys(cluster) if kid not in before), None)
    signing, _ = settle_after_commit(
        cluster,
        aged,
        lambda port: successor is not None and exchange_direct(port, cluster.tokens["load"])[1] == successor,
        timeout=bound,
    )
    time.sleep(2 * cluster.check_interval)  # a few more rounds of both beats after the activation
    keys = _keys(cluster)
    new = {kid: phase for kid, phase in keys.items() if kid not in before}
    sent = {name: _sent(cluster, name) - sent_before[name] for name in ("beat", "beat-2")}
    cluster.stack.stop("beat-2")
    hold(cluster, tally.started)
    notes = (
        f"two beats sent {sent['beat']} + {sent['beat-2']} rotation tasks; successor created after "
        f"{seconds_text(created)}, signing on 3/3 after {seconds_text(signing)}; keys created: {len(new)} "
        f"({', '.join(sorted(new.values())) or 'none'}), active keys: "
        f"{sum(phase == 'active' for phase in keys.values())}"
    )
    ok = len(new) == 1 and sum(phase == "active" for phase in keys.values()) == 1
    return row(
        "second beat started by mistake", tally, settle=signing if ok else None, notes=notes, bound=bound
    )


def entra_outage_start(cluster: Cluster, victim: str = "web3") -> Row:
    tally = cluster.load.begin()
    port = cluster.web_ports[victim]
    cluster.fake.mode = entra.DOWN
    fetches = cluster.fake.total_fetches
    redispatched = _redispatched(cluster)
    try:
        cluster.stack.stop(victim)  # a deploy: drained, then started while Entra answers 503
        started = time.monotonic()
        cluster.stack.start_web(victim, port)
        ready = time.monotonic() - started
        settle = poll_until(lambda: exchange_direct(port, cluster.tokens["load"])[0] == 200, timeout=30)
        settle = None if settle is None else time.monotonic() - started
        refused = cluster.fake.total_fetches - fetches
    finally:
        cluster.fake.mode = entra.OK
    hold(cluster, tally.started)
    notes = (
        f"Entra's discovery and JWKS answering 503; {victim} restarted: ready {ready:.2f} s, its first "
        f"exchange answered 200 {seconds_text(settle)} after its start, with the Entra keys stored in "
        f"PostgreSQL ({refused} fetches refused by Entra meanwhile); HAProxy resent "
        f"{_redispatched(cluster) - redispatched} requests during the restart"
    )
    return row("instance started during an Entra outage", tally, settle=settle, notes=notes, bound=30)


# --- small readers --------------------------------------------------------------------------------
def _haproxy_status(cluster: Cluster, server: str) -> str:
    return haproxy_servers(cluster.haproxy_socket).get(server, "?")


def _redispatched(cluster: Cluster) -> int:
    """Requests HAProxy sent to another instance after the first failed (``+N`` retries in its log)."""
    log = cluster.stack.processes["haproxy"].log_tail(1_000_000_000)
    return len(re.findall(r" \d+/\d+/\d+/\d+/\+\d+ ", log))


def _keys(cluster: Cluster) -> dict[str, str]:
    rows = psql("SELECT kid, phase FROM keys_signingkey", database=cluster.database)
    return dict(line.split("|", 1) for line in rows.splitlines() if line)


def _sent(cluster: Cluster, process: str) -> int:
    return cluster.stack.processes[process].log_tail(10_000_000).count("Sending due task Rotate signing keys")


def _log_count(cluster: Cluster, text: str) -> int:
    return sum(cluster.stack.processes[name].log_tail(100_000_000).count(text) for name in cluster.web_ports)
