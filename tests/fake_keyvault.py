"""A fake Azure Key Vault on loopback HTTPS, speaking the REST API the azure-keyvault-keys SDK uses,
and a fake managed-identity token endpoint (App Service: IDENTITY_ENDPOINT / IDENTITY_HEADER).

The real SDK drives it: it trusts the fake's self-signed certificate through REQUESTS_CA_BUNDLE,
gets its bearer token from the real azure-identity managed-identity path, and meets the 401
challenge first, as against Azure. Faults are armed per test: 429 with Retry-After, 5xx, slowness,
a refused credential, a signature that does not verify.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import ssl
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature

from tests.support.tls import self_signed_certificate

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CHALLENGE = (
    f'Bearer authorization="https://login.microsoftonline.com/{TENANT}", resource="https://vault.azure.net"'
)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _uint(number: int, length: int | None = None) -> bytes:
    return number.to_bytes(length or (number.bit_length() + 7) // 8, "big")


@dataclass
class VaultKey:
    name: str
    version: str
    private_key: Any
    key_ops: list[str]
    enabled: bool = True
    created: int = field(default_factory=lambda: int(time.time()))


@dataclass
class Fault:
    """Answer the next ``count`` vault requests (matching ``operation``, any when empty) this way."""

    status: int = 500
    count: int = 1
    retry_after: int | None = None
    delay: float = 0.0
    operation: str = ""
    garbage: bool = False  # a 200 whose signature does not verify
    code: str = ""  # the error code, by default from the status
    inner: str = ""  # an inner error code (ForbiddenByFirewall, ForbiddenByRbac)


class FakeKeyVault:
    def __init__(self, directory: Path) -> None:
        self.cert_path, key_path = self_signed_certificate(directory)
        self.keys: dict[str, list[VaultKey]] = {}
        self.faults: list[Fault] = []
        self.calls: Counter[str] = Counter()
        self.tokens: set[str] = set()
        self.identity_header = secrets.token_urlsafe(16)
        self.refuse_credential = False
        self._lock = threading.Lock()

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_path, key_path)
        self._vault = ThreadingHTTPServer(("127.0.0.1", 0), _vault_handler(self))
        self._vault.daemon_threads = True
        self._vault.socket = context.wrap_socket(self._vault.socket, server_side=True)
        self._identity = ThreadingHTTPServer(("127.0.0.1", 0), _identity_handler(self))
        self._identity.daemon_threads = True
        self.url = f"https://127.0.0.1:{self._vault.server_address[1]}/"
        self.identity_endpoint = f"http://127.0.0.1:{self._identity.server_address[1]}/msi/token"
        for server in (self._vault, self._identity):
            threading.Thread(target=server.serve_forever, daemon=True).start()

    def close(self) -> None:
        for server in (self._vault, self._identity):
            server.shutdown()
            server.server_close()

    def reset(self) -> None:
        with self._lock:
            self.keys.clear()
            self.faults.clear()
            self.calls.clear()
            self.refuse_credential = False

    def fail(self, **fault: Any) -> None:
        with self._lock:
            self.faults.append(Fault(**fault))

    def take_fault(self, operation: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if not fault.operation or fault.operation == operation:
                    fault.count -= 1
                    if fault.count <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def version_of(self, key_id: str) -> VaultKey:
        name, version = urlsplit(key_id).path.strip("/").split("/")[1:3]
        return next(key for key in self.keys[name] if key.version == version)

    # --- key bundles -------------------------------------------------------------------------

    def bundle(self, key: VaultKey) -> dict[str, Any]:
        kid = f"{self.url}keys/{key.name}/{key.version}"
        public = key.private_key.public_key()
        jwk: dict[str, Any] = {"kid": kid, "key_ops": key.key_ops}
        if isinstance(public, ec.EllipticCurvePublicKey):
            numbers = public.public_numbers()
            jwk.update(kty="EC", crv="P-256", x=b64url(_uint(numbers.x, 32)), y=b64url(_uint(numbers.y, 32)))
        else:
            rsa_numbers = public.public_numbers()
            jwk.update(kty="RSA", n=b64url(_uint(rsa_numbers.n)), e=b64url(_uint(rsa_numbers.e)))
        attributes = {
            "enabled": key.enabled,
            "created": key.created,
            "updated": key.created,
            "recoveryLevel": "Recoverable+Purgeable",
            "exportable": False,
        }
        return {"key": jwk, "attributes": attributes}


def _vault_handler(vault: FakeKeyVault) -> type[BaseHTTPRequestHandler]:
    routes = [
        ("POST", re.compile(r"^/keys/([\w-]+)/create$"), "create"),
        ("GET", re.compile(r"^/keys/([\w-]+)/versions$"), "versions"),
        ("POST", re.compile(r"^/keys/([\w-]+)/(\w+)/sign$"), "sign"),
        ("POST", re.compile(r"^/keys/([\w-]+)/(\w+)/wrapkey$"), "wrapkey"),
        ("POST", re.compile(r"^/keys/([\w-]+)/(\w+)/unwrapkey$"), "unwrapkey"),
        ("PATCH", re.compile(r"^/keys/([\w-]+)/(\w+)$"), "update"),
        ("GET", re.compile(r"^/keys/([\w-]+)/?(\w*)$"), "get"),
    ]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes: without TCP_NODELAY, Nagle and the client's delayed
        # ACK add 40 ms to every answer, a cost of the fake that Azure does not have.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def do_PATCH(self) -> None:
            self._handle("PATCH")

        def _handle(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            path = urlsplit(self.path).path
            found = next(
                (
                    (operation, match)
                    for verb, pattern, operation in routes
                    if verb == method and (match := pattern.match(path))
                ),
                None,
            )
            if found is None:
                return self._answer(404, {"error": {"code": "NotFound", "message": path}})
            operation, match = found
            token = self.headers.get("Authorization", "").removeprefix("Bearer ")
            if token not in vault.tokens:
                vault.calls["challenge"] += 1
                return self._answer(401, {"error": {"code": "Unauthorized"}}, {"WWW-Authenticate": CHALLENGE})
            vault.calls[operation] += 1
            fault = vault.take_fault(operation)
            if fault and fault.delay:
                time.sleep(fault.delay)
            if fault and not fault.garbage and not fault.delay:
                headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                code = fault.code or ("Throttled" if fault.status == 429 else "ServiceUnavailable")
                error: dict[str, Any] = {"code": code, "message": "fault"}
                if fault.inner:
                    error["innererror"] = {"code": fault.inner}
                return self._answer(fault.status, {"error": error}, headers)
            body = json.loads(raw) if raw else {}
            status, answer = getattr(self, f"_{operation}")(*match.groups(), body)
            if fault and fault.garbage and operation == "sign":
                answer["value"] = b64url(b"\x01" * len(b64url_decode(answer["value"])))
            return self._answer(status, answer)

        def _create(self, name: str, body: dict) -> tuple[int, dict]:
            if body.get("kty", "").startswith("EC"):
                private: Any = ec.generate_private_key(ec.SECP256R1())
            else:
                private = rsa.generate_private_key(
                    public_exponent=65537, key_size=int(body.get("key_size", 2048))
                )
            key = VaultKey(
                name=name, version=uuid.uuid4().hex, private_key=private, key_ops=body.get("key_ops", [])
            )
            key.enabled = body.get("attributes", {}).get("enabled", True)
            vault.keys.setdefault(name, []).append(key)
            return 200, vault.bundle(key)

        def _get(self, name: str, version: str, body: dict) -> tuple[int, dict]:
            versions = vault.keys.get(name, [])
            key = (
                next((k for k in versions if k.version == version), None)
                if version
                else (versions[-1] if versions else None)
            )
            if key is None:
                return 404, {
                    "error": {"code": "KeyNotFound", "message": f"A key with (name/id) {name} was not found"}
                }
            return 200, vault.bundle(key)

        def _versions(self, name: str, body: dict) -> tuple[int, dict]:
            items = [
                {"kid": vault.bundle(key)["key"]["kid"], "attributes": vault.bundle(key)["attributes"]}
                for key in vault.keys.get(name, [])
            ]
            return 200, {"value": items, "nextLink": None}

        def _update(self, name: str, version: str, body: dict) -> tuple[int, dict]:
            status, answer = self._get(name, version, {})
            if status != 200:
                return status, answer
            key = next(k for k in vault.keys[name] if k.version == version)
            if "enabled" in body.get("attributes", {}):
                key.enabled = bool(body["attributes"]["enabled"])
            return 200, vault.bundle(key)

        def _usable(self, name: str, version: str, operation: str) -> VaultKey | tuple[int, dict]:
            key = next((k for k in vault.keys.get(name, []) if k.version == version), None)
            if key is None:
                return 404, {"error": {"code": "KeyNotFound", "message": "not found"}}
            if not key.enabled:
                return 403, {
                    "error": {
                        "code": "Forbidden",
                        "message": f"Operation {operation} is not allowed on a disabled key.",
                    }
                }
            if operation not in key.key_ops:
                return 403, {
                    "error": {
                        "code": "Forbidden",
                        "message": f"Operation {operation} is not permitted on this key.",
                    }
                }
            return key

        def _sign(self, name: str, version: str, body: dict) -> tuple[int, dict]:
            key = self._usable(name, version, "sign")
            if isinstance(key, tuple):
                return key
            digest, algorithm = b64url_decode(body["value"]), body["alg"]
            prehashed = Prehashed(hashes.SHA256())
            if algorithm == "ES256":
                r, s = decode_dss_signature(key.private_key.sign(digest, ec.ECDSA(prehashed)))
                signature = _uint(r, 32) + _uint(s, 32)
            elif algorithm == "RS256":
                signature = key.private_key.sign(digest, padding.PKCS1v15(), prehashed)
            else:
                pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
                signature = key.private_key.sign(digest, pss, prehashed)
            return 200, {"kid": vault.bundle(key)["key"]["kid"], "value": b64url(signature)}

        def _oaep(self) -> padding.OAEP:
            return padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)

        def _wrapkey(self, name: str, version: str, body: dict) -> tuple[int, dict]:
            key = self._usable(name, version, "wrapKey")
            if isinstance(key, tuple):
                return key
            wrapped = key.private_key.public_key().encrypt(b64url_decode(body["value"]), self._oaep())
            return 200, {"kid": vault.bundle(key)["key"]["kid"], "value": b64url(wrapped)}

        def _unwrapkey(self, name: str, version: str, body: dict) -> tuple[int, dict]:
            key = self._usable(name, version, "unwrapKey")
            if isinstance(key, tuple):
                return key
            try:
                plain = key.private_key.decrypt(b64url_decode(body["value"]), self._oaep())
            except ValueError:
                return 400, {"error": {"code": "BadParameter", "message": "cannot unwrap"}}
            return 200, {"kid": vault.bundle(key)["key"]["kid"], "value": b64url(plain)}

        def _answer(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

    return Handler


def _identity_handler(vault: FakeKeyVault) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            query = parse_qs(urlsplit(self.path).query)
            if self.headers.get("X-IDENTITY-HEADER") != vault.identity_header or vault.refuse_credential:
                payload = json.dumps({"error": "invalid_request", "error_description": "refused"}).encode()
                self.send_response(400)
            else:
                vault.calls["token"] += 1
                token = secrets.token_urlsafe(24)
                vault.tokens.add(token)
                payload = json.dumps(
                    {
                        "access_token": token,
                        "expires_on": str(int(time.time()) + 3600),
                        "resource": query.get("resource", [""])[0],
                        "token_type": "Bearer",
                    }
                ).encode()
                self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler
