"""deploy/haproxy.cfg for real: Debian's haproxy checks it in both shapes (plain http as the cluster
bench renders it, TLS as production runs it), and, serving it in front of three loopback instances,
health-checks /readyz with the issuer's Host, takes out an instance that is not ready, sets the
forwarded headers instead of passing the client's on, logs no query string, resends an exchange
an instance died on (never a portal write), and answers in the issuer's error shape when no
instance is left."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bench.cluster_stack import HAPROXY_CONFIG, haproxy_environment, haproxy_servers
from tests.support.missing_services import skip_or_fail
from tests.support.servers import free_port
from tests.support.tls import self_signed_certificate

HAPROXY = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)
# Waiting for HAProxy's health checks to change a server's state (checks every 0.5-2 s).
STATE_TIMEOUT = 30


@pytest.fixture(scope="module")
def haproxy() -> str:
    if HAPROXY is None:
        skip_or_fail("needs HAProxy (Debian package haproxy, listed in .ci/system-packages)")
    return str(HAPROXY)


def check(haproxy: str, environment: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 - Debian's haproxy on our own file
        [haproxy, "-c", "-f", str(HAPROXY_CONFIG)],
        env={"PATH": os.environ["PATH"], **environment},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_the_configuration_the_cluster_bench_renders_is_valid(haproxy, tmp_path):
    environment = haproxy_environment(
        port=8443, web_ports=[8001, 8002, 8003], socket_path=tmp_path / "admin.sock", maxconn=4
    )

    checked = check(haproxy, environment)

    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_production_shape_with_tls_and_dropped_privileges_is_valid(haproxy, tmp_path):
    certificate, key = self_signed_certificate(tmp_path)
    bundle = tmp_path / "issuer.pem"
    bundle.write_bytes(certificate.read_bytes() + key.read_bytes())
    environment = {
        **haproxy_environment(port=443, web_ports=[8001, 8002, 8003], socket_path=tmp_path / "s", maxconn=8),
        "ISSUER_BIND": ":443",
        "ISSUER_TLS_CERT": str(bundle),
        "ISSUER_HOST": "issuer.example.com",
        "HAPROXY_DROP_TO": "haproxy",
    }

    checked = check(haproxy, environment)

    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_missing_instance_address_is_refused_at_start(haproxy, tmp_path):
    environment = haproxy_environment(
        port=8443, web_ports=[8001, 8002, 8003], socket_path=tmp_path / "s", maxconn=4
    )
    del environment["ISSUER_WEB_3"]

    checked = check(haproxy, environment)

    assert checked.returncode != 0
    assert "server" in checked.stdout + checked.stderr


@dataclass
class Instance:
    """A loopback stand-in for a web instance: /readyz answers ``ready``; anything else echoes its headers."""

    ready: int = 200
    checks: list[dict[str, str]] = field(default_factory=list)
    posts: list[str] = field(default_factory=list)  # each POST's path; answered by closing, like a crash
    server: ThreadingHTTPServer = field(init=False)

    def __post_init__(self) -> None:
        instance = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                headers = {name.lower(): value for name, value in self.headers.items()}
                if self.path == "/readyz":
                    instance.checks.append(headers)
                    self.answer(
                        instance.ready, {"status": "ready" if instance.ready == 200 else "unavailable"}
                    )
                else:
                    self.answer(200, {"path": self.path, "headers": headers})

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                instance.posts.append(self.path)
                self.close_connection = True  # dies before answering: no status line at all

            def answer(self, status: int, document: dict) -> None:
                body = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])


@dataclass
class Proxy:
    port: int
    socket_path: Path
    log: Path
    instances: list[Instance]

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        return self.request("GET", path, headers=headers)

    def request(
        self, method: str, path: str, body: str | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()

    def wait_for_states(self, expected: dict[str, str]) -> None:
        deadline = time.monotonic() + STATE_TIMEOUT
        while True:
            states = haproxy_servers(self.socket_path) if self.socket_path.exists() else {}
            if states == expected:
                return
            assert time.monotonic() < deadline, f"HAProxy sees {states}, expected {expected}"
            time.sleep(0.1)  # polling HAProxy's state, not a clock under test


@pytest.fixture
def proxy(haproxy, tmp_path) -> Iterator[Proxy]:
    instances = [Instance(), Instance(), Instance()]
    port = free_port()
    socket_path = tmp_path / "admin.sock"
    environment = haproxy_environment(
        port=port, web_ports=[i.port for i in instances], socket_path=socket_path, maxconn=4
    )
    environment["ISSUER_HOST"] = "issuer.example.com"
    log = tmp_path / "haproxy.log"
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603
            [haproxy, "-db", "-f", str(HAPROXY_CONFIG)],
            env={"PATH": os.environ["PATH"], **environment},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    served = Proxy(port=port, socket_path=socket_path, log=log, instances=instances)
    try:
        served.wait_for_states({"web1": "UP", "web2": "UP", "web3": "UP"})
        yield served
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
        for instance in instances:
            instance.server.shutdown()
            instance.server.server_close()


def test_it_checks_readiness_with_the_issuers_host_and_takes_out_an_instance_that_is_not_ready(proxy):
    first = proxy.instances[0]
    assert {"host": "issuer.example.com"}.items() <= first.checks[-1].items()

    first.ready = 503
    proxy.wait_for_states({"web1": "DOWN", "web2": "UP", "web3": "UP"})
    first.ready = 200

    proxy.wait_for_states({"web1": "UP", "web2": "UP", "web3": "UP"})


def test_the_instance_gets_the_address_and_scheme_haproxy_saw_not_what_the_client_claimed(proxy):
    status, _headers, body = proxy.get(
        "/oauth2/token", {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    )

    assert status == 200
    seen = json.loads(body)["headers"]
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"


def test_its_log_has_the_path_without_the_query_string(proxy):
    proxy.get("/oauth2/token?subject_token=secret-value-123")
    deadline = time.monotonic() + STATE_TIMEOUT
    while "/oauth2/token" not in proxy.log.read_text():
        assert time.monotonic() < deadline, proxy.log.read_text()
        time.sleep(0.1)  # polling for the line to be written

    assert "secret-value-123" not in proxy.log.read_text()


def test_with_no_instance_ready_it_answers_in_the_issuers_error_shape(proxy):
    for instance in proxy.instances:
        instance.ready = 503
    proxy.wait_for_states({"web1": "DOWN", "web2": "DOWN", "web3": "DOWN"})

    status, headers, body = proxy.get("/oauth2/token")

    assert status == 503
    assert json.loads(body)["error"] == "temporarily_unavailable"
    assert headers["content-type"] == "application/json"
    assert headers["retry-after"] == "5"
    assert headers["cache-control"] == "no-store"


def test_an_exchange_an_instance_died_on_is_sent_to_another_but_a_portal_write_is_not(proxy):
    form = {"Content-Type": "application/x-www-form-urlencoded"}

    exchange = proxy.request("POST", "/oauth2/token", "grant_type=x", form)
    exchange_attempts = sum(len(instance.posts) for instance in proxy.instances)
    for instance in proxy.instances:
        instance.posts.clear()
    write = proxy.request("POST", "/admin/authz/grant/add/", "tenant=1", form)
    write_attempts = sum(len(instance.posts) for instance in proxy.instances)

    # Every instance "dies" on every POST: the exchange is tried three times (retries 2), the
    # portal write once; both then get HAProxy's 502 in the issuer's error shape.
    assert exchange_attempts == 3
    assert write_attempts == 1
    for status, _headers, body in (exchange, write):
        assert status == 502
        assert json.loads(body)["error"] == "temporarily_unavailable"
