"""Fake identity providers on loopback, one origin each: discovery and a JWKS over real HTTP, and tokens.

Each fake has the shape of a real kind, its loopback origin standing in for the real host:

- ``oidc``: a generic OpenID Connect issuer with Okta's paths (``/oauth2/default``), signing ES256,
  scopes in ``scp`` as a list, no ``nbf``, the client in ``cid``;
- ``entra-external-id``: issuer ``{origin}/{tenant}/v2.0`` (``https://{tenant}.ciamlogin.com`` in
  Azure), metadata under the same authority, Entra's claims;
- ``azure-ad-b2c``: one metadata document per user flow,
  ``/{name}.onmicrosoft.com/{flow}/v2.0/.well-known/openid-configuration``, the tenant's issuer
  ``{origin}/{tenant id}/v2.0/`` in each, tokens naming their flow in ``tfp``.

Tests can make a fake lie (another issuer in its metadata, a ``jwks_uri`` elsewhere, keys of their
choosing) or go down, and count what was fetched, so the real HTTP client and cache are exercised.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from http.server import ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from tests.fake_entra import b64url, b64url_json, json_handler_for, public_jwk, rsa_key

OIDC, EXTERNAL_ID, B2C = "oidc", "entra-external-id", "azure-ad-b2c"
OK, DOWN = "ok", "down"

AUDIENCE = "api://token-issuer"
SCOPE = "tokens.exchange"
EXTERNAL_TENANT_ID = "cccccccc-cccc-4ccc-8ccc-cccccccccccc"
EXTERNAL_CLIENT_ID = "c1c1c1c1-0000-4000-8000-000000000001"
B2C_TENANT_NAME = "fabrikamb2c"
B2C_TENANT_ID = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
B2C_CLIENT_ID = "b1b1b1b1-0000-4000-8000-000000000001"
SIGN_IN_FLOW = "B2C_1_signupsignin"
# The flow as the configuration spells it: B2C compares flows case-insensitively.
SIGN_IN_FLOW_CONFIGURED = "B2C_1_SignUpSignIn"
RESET_FLOW = "B2C_1_passwordreset"
OIDC_BASE = "/oauth2/default"
OIDC_SUBJECT = "00u1a2b3c4D5e6F7g8h9"
OIDC_CLIENT_ID = "0oa9z8y7x6W5v4U3t2s1"
USER_OID = "d0d0d0d0-0000-4000-8000-000000000001"

METADATA = "/.well-known/openid-configuration"


def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def ec_public_jwk(key: ec.EllipticCurvePrivateKey, kid: str, **extra: object) -> dict[str, object]:
    numbers = key.public_key().public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "use": "sig",
        "kid": kid,
        "x": b64url(numbers.x.to_bytes(32, "big")),
        "y": b64url(numbers.y.to_bytes(32, "big")),
        **extra,
    }


def jwk_of(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, kid: str, **extra: object
) -> dict[str, object]:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return ec_public_jwk(key, kid, **extra)
    return public_jwk(key, kid, **extra)


def signature_of(signing_input: bytes, key: Any, algorithm: str) -> bytes:
    """A JWS signature by ``algorithm`` (RFC 7518): PKCS#1 v1.5, PSS with a 32-byte salt, or ECDSA's R||S."""
    if algorithm == "ES256":
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    if algorithm == "PS256":
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        return key.sign(signing_input, pss, hashes.SHA256())
    return key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())


def sign_as(header: dict[str, Any], claims: dict[str, Any], key: Any, algorithm: str) -> str:
    """A compact JWS over any header at all, signed by ``algorithm`` whatever the header says."""
    signing_input = f"{b64url_json(header)}.{b64url_json(claims)}"
    return f"{signing_input}.{b64url(signature_of(signing_input.encode(), key, algorithm))}"


class FakeProvider:
    """One provider of ``kind`` on its own loopback origin; the last of ``keys`` signs, all are published."""

    def __init__(self, kind: str, *, algorithm: str = "RS256") -> None:
        self.kind = kind
        self.algorithm = algorithm
        self.fetches: Counter[str] = Counter()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), json_handler_for(self))
        self.server.daemon_threads = True
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name=f"fake-{kind}", daemon=True)
        self.initial = (f"kid-{uuid.uuid4().hex[:16]}", self.new_key())
        self.reset()

    def start(self) -> FakeProvider:
        self.thread.start()
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        """Back to a healthy provider with its first key and no recorded fetches."""
        self.mode = OK
        self.keys: list[tuple[str, Any]] = [self.initial]
        self.metadata_issuer: str | None = None  # None: its own issuer
        self.jwks_uri: str | None = None  # None: its own JWKS
        self.fetches.clear()

    def new_key(self) -> Any:
        return ec_key() if self.algorithm == "ES256" else rsa_key()

    # --- where things are ----------------------------------------------------------------------
    @property
    def issuer(self) -> str:
        if self.kind == OIDC:
            return f"{self.origin}{OIDC_BASE}"
        if self.kind == EXTERNAL_ID:
            return f"{self.origin}/{EXTERNAL_TENANT_ID}/v2.0"
        return f"{self.origin}/{B2C_TENANT_ID}/v2.0/"

    def base_path(self, flow: str = SIGN_IN_FLOW) -> str:
        if self.kind == OIDC:
            return OIDC_BASE
        if self.kind == EXTERNAL_ID:
            return f"/{EXTERNAL_TENANT_ID}"
        return f"/{B2C_TENANT_NAME}.onmicrosoft.com/{flow}"

    def jwks_url(self, flow: str = SIGN_IN_FLOW) -> str:
        keys = "/v1/keys" if self.kind == OIDC else "/discovery/v2.0/keys"
        return f"{self.origin}{self.base_path(flow)}{keys}"

    def metadata_fetches(self, flow: str = SIGN_IN_FLOW) -> int:
        version = "" if self.kind == OIDC else "/v2.0"
        return self.fetches[f"{self.base_path(flow)}{version}{METADATA}"]

    @property
    def total_fetches(self) -> int:
        return sum(self.fetches.values())

    @property
    def signing(self) -> tuple[str, Any]:
        return self.keys[-1]

    def entry(self, name: str, **overrides: Any) -> dict[str, Any]:
        """This provider as an IDENTITY_PROVIDERS_FILE entry, with the loopback origin as its authority."""
        entry: dict[str, Any] = {"name": name, "kind": self.kind, "audiences": [self.audience]}
        if self.kind == OIDC:
            entry.update(issuer=self.issuer, algorithms=[self.algorithm], required_scopes=[SCOPE])
        elif self.kind == EXTERNAL_ID:
            entry.update(tenant_id=EXTERNAL_TENANT_ID, authority=self.origin, required_scopes=[SCOPE])
        else:
            entry.update(
                tenant_id=B2C_TENANT_ID,
                tenant_name=B2C_TENANT_NAME,
                authority=self.origin,
                user_flows=[SIGN_IN_FLOW_CONFIGURED],
                required_scopes=[SCOPE],
            )
        entry.update(overrides)
        return {name: value for name, value in entry.items() if value is not None}

    @property
    def audience(self) -> str:
        return {OIDC: AUDIENCE, EXTERNAL_ID: EXTERNAL_CLIENT_ID, B2C: B2C_CLIENT_ID}[self.kind]

    # --- tokens --------------------------------------------------------------------------------
    def claims(self, *, now: float | None = None, **overrides: Any) -> dict[str, Any]:
        """Claims shaped as this kind writes them; keyword claims override, None deletes one."""
        issued = int(time.time() if now is None else now)
        body: dict[str, Any] = {"iss": self.issuer, "aud": self.audience, "iat": issued, "exp": issued + 3600}
        if self.kind == OIDC:
            body.update(
                sub=OIDC_SUBJECT,
                cid=OIDC_CLIENT_ID,
                uid=OIDC_SUBJECT,
                jti=uuid.uuid4().hex,
                scp=[SCOPE, "openid"],
            )
        elif self.kind == EXTERNAL_ID:
            body.update(
                nbf=issued,
                tid=EXTERNAL_TENANT_ID,
                oid=USER_OID,
                sub="pairwise-subject-of-the-app",
                azp="e2e2e2e2-0000-4000-8000-000000000001",
                scp=f"{SCOPE} User.Read",
                ver="2.0",
            )
        else:
            body.update(
                nbf=issued,
                sub=USER_OID,
                oid=USER_OID,
                tfp=SIGN_IN_FLOW,
                azp="f3f3f3f3-0000-4000-8000-000000000001",
                scp=SCOPE,
                ver="1.0",
            )
        body.update(overrides)
        return {name: value for name, value in body.items() if value is not None}

    def mint(
        self,
        *,
        now: float | None = None,
        header: dict[str, Any] | None = None,
        key: Any = None,
        algorithm: str | None = None,
        **claims: Any,
    ) -> str:
        """A token of this provider; ``header`` entries override (None deletes), ``key`` signs instead."""
        kid, signing_key = self.signing
        algorithm = algorithm or self.algorithm
        headers = {"alg": algorithm, "typ": "JWT", "kid": kid, **(header or {})}
        return sign_as(
            {name: value for name, value in headers.items() if value is not None},
            self.claims(now=now, **claims),
            key or signing_key,
            algorithm,
        )

    # --- serving -------------------------------------------------------------------------------
    def answer(self, path: str) -> tuple[int, bytes]:
        self.fetches[path] += 1
        if self.mode == DOWN:
            return 503, b'{"error":"temporarily_unavailable"}'
        flow = path.split("/")[2] if self.kind == B2C and path.count("/") >= 3 else SIGN_IN_FLOW
        version = "" if self.kind == OIDC else "/v2.0"
        if path == f"{self.base_path(flow)}{version}{METADATA}":
            document = {
                "issuer": self.metadata_issuer or self.issuer,
                "jwks_uri": self.jwks_uri or self.jwks_url(flow),
                "id_token_signing_alg_values_supported": [self.algorithm],
            }
            return 200, json.dumps(document).encode()
        if path == self.jwks_url(flow).removeprefix(self.origin):
            keys = [jwk_of(key, kid) for kid, key in self.keys]
            return 200, json.dumps({"keys": keys}).encode()
        return 404, b'{"error":"not_found"}'


class FakeProviders:
    """The fakes a test trusts: a generic provider (``okta``), External ID (``customers``), B2C
    (``consumers``), and an ``attacker`` on an origin of its own that no configuration trusts."""

    def __init__(self) -> None:
        self.oidc = FakeProvider(OIDC, algorithm="ES256")
        self.external = FakeProvider(EXTERNAL_ID)
        self.b2c = FakeProvider(B2C)
        self.attacker = FakeProvider(OIDC, algorithm="ES256")
        self.all = (self.oidc, self.external, self.b2c, self.attacker)

    def start(self) -> FakeProviders:
        for fake in self.all:
            fake.start()
        return self

    def close(self) -> None:
        for fake in self.all:
            fake.close()

    def reset(self) -> None:
        for fake in self.all:
            fake.reset()

    def entries(self) -> list[dict[str, Any]]:
        """The IDENTITY_PROVIDERS_FILE entries of the trusted three."""
        return [self.oidc.entry("okta"), self.external.entry("customers"), self.b2c.entry("consumers")]

    @property
    def total_fetches(self) -> int:
        return sum(fake.total_fetches for fake in self.all)
