"""A fake token issuer on loopback for the downstream kit's tests: RFC 8414 metadata and a JWKS over
real HTTP, with its own ES256, RS256 and PS256 keys, and tokens of any shape.

Like the fake Entra, it counts what it serves and can misbehave (down, slow, garbage), and it speaks
HTTP caching as the real issuer does (``Cache-Control: max-age``, a strong ``ETag``, ``304`` on
``If-None-Match``), so the kit's real HTTP client and cache are what the tests exercise.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

AUDIENCE = "api://orders"
OK, DOWN, SLOW, GARBAGE = "ok", "down", "slow", "garbage"
METADATA_PATH = "/.well-known/oauth-authorization-server"
JWKS_PATH = "/.well-known/jwks.json"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_json(value: object) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def _uint(number: int, length: int | None = None) -> bytes:
    return number.to_bytes(length or (number.bit_length() + 7) // 8, "big")


@dataclass
class IssuerKey:
    """One signing key of the fake issuer, with its published JWK."""

    algorithm: str
    private_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    kid: str = field(default_factory=lambda: b64url(uuid.uuid4().bytes))

    @classmethod
    def generate(cls, algorithm: str = "ES256", *, rsa_bits: int = 2048) -> IssuerKey:
        if algorithm == "ES256":
            return cls(algorithm, ec.generate_private_key(ec.SECP256R1()))
        return cls(algorithm, rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits))

    def jwk(self, **extra: object) -> dict[str, object]:
        public = self.private_key.public_key()
        if isinstance(public, ec.EllipticCurvePublicKey):
            numbers = public.public_numbers()
            members: dict[str, object] = {
                "kty": "EC",
                "crv": "P-256",
                "x": b64url(_uint(numbers.x, 32)),
                "y": b64url(_uint(numbers.y, 32)),
            }
        else:
            rsa_numbers = public.public_numbers()
            members = {"kty": "RSA", "n": b64url(_uint(rsa_numbers.n)), "e": b64url(_uint(rsa_numbers.e))}
        return {**members, "kid": self.kid, "use": "sig", "alg": self.algorithm, **extra}

    def sign(self, signing_input: bytes) -> bytes:
        key = self.private_key
        if isinstance(key, ec.EllipticCurvePrivateKey):
            r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
            return _uint(r, 32) + _uint(s, 32)
        if self.algorithm == "PS256":
            pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
            return key.sign(signing_input, pss, hashes.SHA256())
        return key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())


def compact(header: dict[str, Any], claims: dict[str, Any], signature: bytes) -> str:
    return f"{b64url_json(header)}.{b64url_json(claims)}.{b64url(signature)}"


def signed(header: dict[str, Any], claims: dict[str, Any], key: IssuerKey) -> str:
    """A compact JWS over any header and claims at all, signed by ``key``."""
    signing_input = f"{b64url_json(header)}.{b64url_json(claims)}".encode("ascii")
    return f"{signing_input.decode('ascii')}.{b64url(key.sign(signing_input))}"


class FakeIssuer:
    """The fake issuer; ``url`` is its issuer identifier and base URL (``http://127.0.0.1:<port>``)."""

    def __init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="fake-issuer", daemon=True)
        self.initial = {algorithm: IssuerKey.generate(algorithm) for algorithm in ("ES256", "RS256", "PS256")}
        self.fetches: Counter[str] = Counter()
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.reset()

    def start(self) -> FakeIssuer:
        self.thread.start()
        return self

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        """Healthy, its three first keys published, ES256 signing, max-age 900, nothing counted."""
        self.keys: list[IssuerKey] = list(self.initial.values())
        self.signing = self.initial["ES256"]
        self.mode = OK
        self.delay = 0.0
        self.cache_control: str | None = "public, max-age=900"
        self.extra_headers: dict[str, str] = {}
        self.metadata_issuer: str | None = None  # None: its own url
        self.jwks_uri: str | None = None  # None: its own JWKS path
        self.jwks_body: bytes | None = None  # None: rendered from the keys
        self.if_none_match: list[str | None] = []
        self.fetches.clear()
        self.release.clear()

    # --- what tests assert on ----------------------------------------------------------------------
    @property
    def jwks_fetches(self) -> int:
        return self.fetches[JWKS_PATH]

    @property
    def metadata_fetches(self) -> int:
        return self.fetches[METADATA_PATH]

    # --- behaviours -------------------------------------------------------------------------------
    def rotate(self, algorithm: str = "ES256", *, publish: bool = True) -> IssuerKey:
        """A new key that signs from now on; published at once unless ``publish`` is False."""
        key = IssuerKey.generate(algorithm)
        if publish:
            self.keys = [*self.keys, key]
        self.signing = key
        return key

    def unpublish(self, key: IssuerKey) -> None:
        self.keys = [published for published in self.keys if published.kid != key.kid]

    def claims(self, *, now: float | None = None, **overrides: Any) -> dict[str, Any]:
        """The issuer's contract claims for a 10-minute token; overrides replace, None deletes."""
        issued = int(time.time() if now is None else now)
        body: dict[str, Any] = {
            "iss": self.url,
            "sub": "p-0001",
            "aud": AUDIENCE,
            "iat": issued,
            "nbf": issued,
            "exp": issued + 600,
            "jti": uuid.uuid4().hex,
            "client_id": "client-1",
            "tenant": "acme",
            "roles": ["viewer"],
            "scope": "orders.read",
        }
        body.update(overrides)
        return {name: value for name, value in body.items() if value is not None}

    def mint(
        self,
        *,
        key: IssuerKey | None = None,
        header: dict[str, Any] | None = None,
        now: float | None = None,
        **claims: Any,
    ) -> str:
        """A token as the issuer makes it; ``header`` entries override (None deletes)."""
        key = key or self.signing
        full_header = {"alg": key.algorithm, "typ": "at+jwt", "kid": key.kid, **(header or {})}
        full_header = {name: value for name, value in full_header.items() if value is not None}
        return signed(full_header, self.claims(now=now, **claims), key)

    # --- serving ----------------------------------------------------------------------------------
    def jwks_document(self) -> bytes:
        if self.jwks_body is not None:
            return self.jwks_body
        return json.dumps({"keys": [key.jwk() for key in self.keys]}, separators=(",", ":")).encode()

    def answer(self, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        with self.lock:
            self.fetches[path] += 1
        if self.mode == SLOW:
            self.release.wait(self.delay)
        if self.mode == DOWN:
            return 503, {}, b'{"error":"temporarily_unavailable"}'
        if self.mode == GARBAGE:
            return 200, {}, b"<html>\x00\xff not json"
        if path == METADATA_PATH:
            document = {
                "issuer": self.metadata_issuer or self.url,
                "jwks_uri": self.jwks_uri or f"{self.url}{JWKS_PATH}",
                "token_endpoint": f"{self.url}/oauth2/token",
            }
            return 200, {"Cache-Control": "public, max-age=3600"}, json.dumps(document).encode()
        if path == JWKS_PATH:
            body = self.jwks_document()
            etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
            self.if_none_match.append(headers.get("If-None-Match"))
            cache = {"ETag": etag, **self.extra_headers}
            if self.cache_control is not None:
                cache["Cache-Control"] = self.cache_control
            if headers.get("If-None-Match") == etag:
                return 304, cache, b""
            return 200, cache, body
        return 404, {}, b'{"error":"not_found"}'


def _handler_for(fake: FakeIssuer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, headers, body = fake.answer(self.path, dict(self.headers))
            try:
                self.send_response(status)
                if status != 304:
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                if status != 304:
                    self.wfile.write(body)
            except OSError:
                pass  # the client gave up (a deadline test)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler
