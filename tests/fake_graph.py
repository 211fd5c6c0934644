"""A fake Microsoft Graph and its token endpoint on loopback, over https, for group overage.

azure-identity refuses an authority that is not https, so the fake serves TLS with a self-signed
certificate for 127.0.0.1 that it makes at start; ``ca_file`` holds it (tests point
``REQUESTS_CA_BUNDLE`` at it, which both azure-identity's pipeline and ``requests`` honour). It serves
what ``ClientSecretCredential`` and the Graph client call:

- ``GET /{tid}/v2.0/.well-known/openid-configuration``: MSAL's tenant discovery;
- ``POST /{tid}/oauth2/v2.0/token``: client credentials, checking the client id, secret and scope;
- ``POST /v1.0/users/{oid}/checkMemberGroups``: checks the bearer token (which names the directory)
  and at most 20 ids, and answers the asked ids the user is a member of.

It records every call and can go down (503), be slow, throttle (429 with ``Retry-After``), refuse
(403) or answer garbage, each for the token endpoint and Graph separately.
"""

from __future__ import annotations

import json
import re
import secrets
import ssl
import tempfile
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

from tests.support.tls import self_signed_certificate

CLIENT_ID = "88888888-8888-4888-8888-888888888888"
CLIENT_SECRET = "fake-graph-client-secret-never-logged"

OK, DOWN, SLOW, THROTTLED, FORBIDDEN, GARBAGE = "ok", "down", "slow", "throttled", "forbidden", "garbage"

_CHECK_PATH = re.compile(r"^/v1\.0/users/([0-9a-f-]{36})/checkMemberGroups$")
_TOKEN_PATH = re.compile(r"^/([0-9a-f-]{36})/oauth2/v2\.0/token$")
_DISCOVERY_PATH = re.compile(r"^/([0-9a-f-]{36})/v2\.0/\.well-known/openid-configuration$")


@dataclass(frozen=True)
class Check:
    """One checkMemberGroups call as the fake received it."""

    tid: str
    oid: str
    group_ids: tuple[str, ...]


class FakeGraph:
    """The fake; ``url`` (``https://127.0.0.1:<port>``) is both the authority and the Graph endpoint."""

    def __init__(self) -> None:
        self._directory = tempfile.TemporaryDirectory(prefix="fake-graph-")
        cert_file, key_file = self_signed_certificate(Path(self._directory.name))
        self.ca_file = str(cert_file)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.server.daemon_threads = True
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="fake-graph", daemon=True)
        self.release = threading.Event()
        self.reset()

    def start(self) -> FakeGraph:
        self.thread.start()
        return self

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self._directory.cleanup()

    def reset(self) -> None:
        """Healthy, no memberships, no tokens issued, nothing recorded."""
        self.release.set()  # a slow answer still pending from the last test returns now
        self.release = threading.Event()
        self.graph_mode = OK
        self.token_mode = OK
        self.delay = 0.0
        self.retry_after = "7"
        self.memberships: dict[tuple[str, str], set[str]] = {}
        self.tokens: dict[str, str] = {}  # access token -> directory
        self.token_requests: list[str] = []  # the directory of each token request
        self.scopes: list[str] = []  # the scope of each token request
        self.checks: list[Check] = []
        self.discoveries = 0

    def member(self, tid: str, oid: str, *groups: str) -> None:
        """Make ``oid`` of directory ``tid`` a (transitive) member of ``groups``."""
        self.memberships.setdefault((tid, oid), set()).update(groups)

    # --- serving -------------------------------------------------------------------------------
    def get(self, path: str) -> tuple[int, dict[str, str], bytes]:
        found = _DISCOVERY_PATH.match(path)
        if not found:
            return 404, {}, b'{"error":"not_found"}'
        self.discoveries += 1
        tid = found.group(1)
        document = {
            "issuer": f"{self.url}/{tid}/v2.0",
            "authorization_endpoint": f"{self.url}/{tid}/oauth2/v2.0/authorize",
            "token_endpoint": f"{self.url}/{tid}/oauth2/v2.0/token",
        }
        return 200, {}, json.dumps(document).encode()

    def post(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        if found := _TOKEN_PATH.match(path):
            return self._token(found.group(1), body)
        if found := _CHECK_PATH.match(path):
            return self._check(found.group(1), headers, body)
        return 404, {}, b'{"error":"not_found"}'

    def _misbehave(self, mode: str) -> tuple[int, dict[str, str], bytes] | None:
        if mode == SLOW:
            self.release.wait(self.delay)
        if mode == DOWN:
            return 503, {}, b'{"error":{"code":"serviceNotAvailable"}}'
        if mode == THROTTLED:
            return 429, {"Retry-After": self.retry_after}, b'{"error":{"code":"TooManyRequests"}}'
        if mode == FORBIDDEN:
            return 403, {}, b'{"error":{"code":"Authorization_RequestDenied"}}'
        if mode == GARBAGE:
            return 200, {}, b"<html>\x00\xff not json"
        return None

    def _token(self, tid: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        self.token_requests.append(tid)
        if (answer := self._misbehave(self.token_mode)) is not None:
            return answer
        form = {name: values[0] for name, values in parse_qs(body.decode()).items()}
        if (
            form.get("grant_type") != "client_credentials"
            or form.get("client_id") != CLIENT_ID
            or form.get("client_secret") != CLIENT_SECRET
        ):
            return 401, {}, b'{"error":"invalid_client","error_description":"AADSTS7000215"}'
        self.scopes.append(form.get("scope", ""))
        if not form.get("scope", "").endswith("/.default"):  # app-only tokens take only .default
            return 400, {}, b'{"error":"invalid_scope","error_description":"AADSTS1002012"}'
        token = secrets.token_urlsafe(24)
        self.tokens[token] = tid
        answer = {"access_token": token, "expires_in": 3599, "ext_expires_in": 3599, "token_type": "Bearer"}
        return 200, {}, json.dumps(answer).encode()

    def _check(self, oid: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        tid = self.tokens.get(token) if scheme == "Bearer" else None
        if tid is None:
            return 401, {}, b'{"error":{"code":"InvalidAuthenticationToken"}}'
        try:
            asked = json.loads(body)["groupIds"]
        except (ValueError, KeyError, TypeError):
            return 400, {}, b'{"error":{"code":"BadRequest"}}'
        self.checks.append(Check(tid=tid, oid=oid, group_ids=tuple(asked)))
        if (answer := self._misbehave(self.graph_mode)) is not None:
            return answer
        if not isinstance(asked, list) or not 1 <= len(asked) <= 20:
            return 400, {}, b'{"error":{"code":"Request_BadRequest"}}'
        groups = self.memberships.get((tid, oid), set())
        answer = {"@odata.context": "…", "value": [group for group in asked if group in groups]}
        return 200, {}, json.dumps(answer).encode()


def _handler_for(fake: FakeGraph) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._send(*fake.get(self.path))

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            headers = {name.lower(): value for name, value in self.headers.items()}
            self._send(*fake.post(self.path, headers, body))

        def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass  # the client gave up (a timeout test)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler
