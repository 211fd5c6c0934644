"""A fake Microsoft Entra ID on loopback: discovery and JWKS per directory over real HTTP, and tokens.

It signs with its own RSA keys, counts every fetch per path, and can roll its keys over, go down
(HTTP 503), be slow (answer after a delay) or serve garbage, so tests exercise the real HTTP client
and cache instead of mocks of our own functions.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

TENANT_ID = "11111111-1111-4111-8111-111111111111"
SECOND_TENANT_ID = "22222222-2222-4222-8222-222222222222"
UNTRUSTED_TENANT_ID = "99999999-9999-4999-8999-999999999999"
AUDIENCE = "api://token-issuer"
AUDIENCE_ID = "33333333-3333-4333-8333-333333333333"
CLIENT_ID = "44444444-4444-4444-8444-444444444444"
OID = "55555555-5555-4555-8555-555555555555"
SCOPE = "access_as_user"
ROLE = "Tokens.Exchange"

OK, DOWN, SLOW, GARBAGE = "ok", "down", "slow", "garbage"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(value: object) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(key: rsa.RSAPrivateKey, kid: str, **extra: object) -> dict[str, object]:
    numbers = key.public_key().public_numbers()

    def encode(number: int) -> str:
        return b64url(number.to_bytes((number.bit_length() + 7) // 8, "big"))

    return {"kty": "RSA", "use": "sig", "kid": kid, "n": encode(numbers.n), "e": encode(numbers.e), **extra}


def sign(header: dict[str, Any], claims: dict[str, Any], key: rsa.RSAPrivateKey) -> str:
    """RS256 over any header at all (PyJWT's encoder would refuse the malformed ones attacks need)."""
    signing_input = f"{b64url_json(header)}.{b64url_json(claims)}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64url(signature)}"


class FakeDirectory:
    """One directory's signing keys: the last one signs, all are published."""

    def __init__(self, tid: str) -> None:
        self.tid = tid
        self.initial = (f"kid-{uuid.uuid4().hex[:16]}", rsa_key())
        self.reset()

    def reset(self) -> None:
        self.keys: list[tuple[str, rsa.RSAPrivateKey]] = [self.initial]
        self.key_issuer: str | None = "{authority}/{{tenantid}}/v2.0"

    @property
    def signing(self) -> tuple[str, rsa.RSAPrivateKey]:
        return self.keys[-1]


class FakeEntra:
    """The fake identity provider; ``authority`` is its base URL (``http://127.0.0.1:<port>``)."""

    def __init__(self) -> None:
        self.directories: dict[str, FakeDirectory] = {}
        self.fetches: Counter[str] = Counter()
        self.release = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), json_handler_for(self))
        self.server.daemon_threads = True
        self.authority = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="fake-entra", daemon=True)
        for tid in (TENANT_ID, SECOND_TENANT_ID):
            self.directory(tid)
        self.reset()

    def start(self) -> FakeEntra:
        self.thread.start()
        return self

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        """Back to a healthy provider with each directory's first key and no recorded fetches."""
        self.mode = OK
        self.delay = 0.0
        self.jwks_uri: str | None = None
        self.jwks_override: dict[str, Any] | None = None  # served as the JWKS of every directory
        self.fetches.clear()
        for directory in self.directories.values():
            directory.reset()

    def directory(self, tid: str) -> FakeDirectory:
        if tid not in self.directories:
            self.directories[tid] = FakeDirectory(tid)
        return self.directories[tid]

    # --- what tests assert on ------------------------------------------------------------------
    def jwks_fetches(self, tid: str = TENANT_ID) -> int:
        return self.fetches[f"/{tid}/discovery/v2.0/keys"]

    @property
    def total_fetches(self) -> int:
        return sum(self.fetches.values())

    # --- behaviours ----------------------------------------------------------------------------
    def rotate(self, tid: str = TENANT_ID, *, keep_old: bool = True) -> str:
        """Publish a new key and sign with it from now on (Entra's rollover); returns its kid."""
        directory = self.directory(tid)
        kid = f"kid-{uuid.uuid4().hex[:16]}"
        directory.keys = [*(directory.keys if keep_old else []), (kid, rsa_key())]
        return kid

    def mint(
        self,
        tid: str = TENANT_ID,
        *,
        app_only: bool = False,
        now: float | None = None,
        header: dict[str, Any] | None = None,
        key: rsa.RSAPrivateKey | None = None,
        **claims: Any,
    ) -> str:
        """An Entra-shaped v2 access token; keyword claims override the defaults, None deletes one."""
        issued = int(time.time() if now is None else now)
        kid, signing_key = self.directory(tid).signing
        body: dict[str, Any] = {
            "aud": AUDIENCE,
            "iss": f"{self.authority}/{tid}/v2.0",
            "iat": issued,
            "nbf": issued,
            "exp": issued + 3600,
            "tid": tid,
            "oid": OID,
            "sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
            "azp": CLIENT_ID,
            "ver": "2.0",
            "scp": f"{SCOPE} User.Read",
            "name": "Ada Lovelace",
            "preferred_username": "ada@example.com",
        }
        if app_only:
            del body["scp"], body["name"], body["preferred_username"]
            body.update(idtyp="app", roles=[ROLE])
        body.update(claims)
        headers = {"alg": "RS256", "typ": "JWT", "kid": kid, **(header or {})}
        return sign(
            {name: value for name, value in headers.items() if value is not None},
            {name: value for name, value in body.items() if value is not None},
            key or signing_key,
        )

    # --- serving -------------------------------------------------------------------------------
    def answer(self, path: str) -> tuple[int, bytes]:
        self.fetches[path] += 1
        if self.mode == SLOW:
            self.release.wait(self.delay)
        if self.mode == DOWN:
            return 503, b'{"error":"temporarily_unavailable"}'
        if self.mode == GARBAGE:
            return 200, b"<html>\x00\xff not json"
        parts = path.strip("/").split("/")
        if len(parts) < 2 or parts[0] not in self.directories:
            return 404, b'{"error":"not_found"}'
        directory = self.directories[parts[0]]
        if parts[1:] == ["v2.0", ".well-known", "openid-configuration"]:
            uri = self.jwks_uri or f"{self.authority}/{directory.tid}/discovery/v2.0/keys"
            document = {"issuer": f"{self.authority}/{directory.tid}/v2.0", "jwks_uri": uri}
            return 200, json.dumps(document).encode()
        if parts[1:] == ["discovery", "v2.0", "keys"]:
            if self.jwks_override is not None:
                return 200, json.dumps(self.jwks_override).encode()
            extra = {}
            if directory.key_issuer is not None:
                extra["issuer"] = directory.key_issuer.format(authority=self.authority)
            keys = [public_jwk(key, kid, **extra) for kid, key in directory.keys]
            return 200, json.dumps({"keys": keys}).encode()
        return 404, b'{"error":"not_found"}'


def json_handler_for(fake: Any) -> type[BaseHTTPRequestHandler]:
    """A GET handler answering with ``fake.answer(path)``'s status and JSON body (the fakes of
    identity providers share it)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = fake.answer(self.path)
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass  # the client gave up (a timeout test)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler
