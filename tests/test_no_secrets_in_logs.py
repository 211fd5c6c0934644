"""No secret reaches a log: the attack catalogue and a normal exchange, with every log line captured.

Looked for in the output: each subject token (whole, its payload and its signature), each issued
token (whole, payload, signature), private key material (PEM markers, the DER, every private JWK
member of our active key, opened through the key store), KEY_ENCRYPTION_KEY and SECRET_KEY.
Once in-process with every logger at DEBUG and SQL logging on, once against gunicorn with the
production configuration (config/gunicorn.py, access log on) reading its stdout and stderr.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import logging
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlencode

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.conf import settings as django_settings
from django.core.cache import cache

from authz.models import Audience, Grant, Permission, Role, Tenant
from authz.rfc8693 import ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE
from keys.models import SigningKey
from keys.services import key_caches_clear, signing_key_rotate
from keys.stores import LocalKeyStore, key_store_get
from tests import fake_entra as entra
from tests.support.servers import app_database_prepare, app_environment, app_server

# Segments shorter than this could occur in a log by chance (a header, "none"); tokens' are longer.
MIN_SECRET = 16


# --- the attack catalogue ------------------------------------------------------------------------
def _claims(fake: entra.FakeEntra) -> dict:
    now = int(time.time())
    return {
        "aud": entra.AUDIENCE,
        "iss": f"{fake.authority}/{entra.TENANT_ID}/v2.0",
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "tid": entra.TENANT_ID,
        "oid": entra.OID,
        "azp": entra.CLIENT_ID,
        "ver": "2.0",
        "scp": entra.SCOPE,
        "nonce-for-this-run": secrets.token_urlsafe(24),  # makes every payload segment unique
    }


def _unsigned(header: dict, claims: dict, signature: bytes = b"") -> str:
    return f"{entra.b64url_json(header)}.{entra.b64url_json(claims)}.{entra.b64url(signature)}"


def _hs256_with_public_key(fake: entra.FakeEntra) -> str:
    kid, key = fake.directory(entra.TENANT_ID).signing
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = f"{entra.b64url_json({'alg': 'HS256', 'kid': kid})}.{entra.b64url_json(_claims(fake))}"
    signature = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{entra.b64url(signature)}"


def _embedded_jwk(fake: entra.FakeEntra) -> str:
    attacker = entra.rsa_key()
    header = {"alg": "RS256", "kid": "attacker", "jwk": entra.public_jwk(attacker, "attacker")}
    return entra.sign(header, _claims(fake), attacker)


def _jku(fake: entra.FakeEntra) -> str:
    attacker = entra.rsa_key()
    header = {"alg": "RS256", "kid": "attacker", "jku": "http://127.0.0.1:9/keys.json"}
    return entra.sign(header, _claims(fake), attacker)


ATTACKS: dict[str, Callable[[entra.FakeEntra], str]] = {
    "alg-none": lambda e: _unsigned(
        {"alg": "none", "kid": e.directory(entra.TENANT_ID).signing[0]}, _claims(e)
    ),
    "hs256-with-the-public-key": _hs256_with_public_key,
    "embedded-jwk": _embedded_jwk,
    "jku": _jku,
    "kid-path-traversal": lambda e: e.mint(
        header={"kid": "../../../../etc/passwd"}, nonce=secrets.token_hex(8)
    ),
    "expired": lambda e: e.mint(now=time.time() - 7200, nonce=secrets.token_hex(8)),
    "wrong-audience": lambda e: e.mint(aud="https://graph.microsoft.com", nonce=secrets.token_hex(8)),
    "untrusted-directory": lambda e: e.mint(entra.UNTRUSTED_TENANT_ID, nonce=secrets.token_hex(8)),
    "missing-scope": lambda e: e.mint(scp="User.Read", nonce=secrets.token_hex(8)),
    "stripped-signature": lambda e: e.mint(nonce=secrets.token_hex(8)).rsplit(".", 1)[0] + ".",
    "garbage": lambda e: ".".join(secrets.token_urlsafe(30) for _ in range(3)),
    "oversized": lambda e: e.mint(padding=secrets.token_urlsafe(20_000)),
}


def catalogue(fake: entra.FakeEntra) -> dict[str, str]:
    """Every attack, plus a valid token for the normal exchange."""
    return {name: attack(fake) for name, attack in ATTACKS.items()} | {"valid": fake.mint(nonce="n")}


# --- what must never appear ----------------------------------------------------------------------
def token_secrets(token: str) -> set[str]:
    """The token and its payload and signature segments (the header names only alg and kid)."""
    parts = token.split(".")
    return {value for value in (token, *parts[1:]) if len(value) >= MIN_SECRET}


def _b64url_int(number: int) -> str:
    return (
        base64.urlsafe_b64encode(number.to_bytes((number.bit_length() + 7) // 8, "big")).rstrip(b"=").decode()
    )


def private_key_secrets(der: bytes) -> set[str]:
    """A private key as it could leak: its DER (base64, base64url, hex) and each private JWK member."""
    key = serialization.load_der_private_key(der, password=None)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        numbers: list[int] = [key.private_numbers().private_value]
    else:
        assert isinstance(key, rsa.RSAPrivateKey)
        private = key.private_numbers()
        numbers = [private.d, private.p, private.q, private.dmp1, private.dmq1, private.iqmp]
    found = {_b64url_int(number) for number in numbers} | {format(number, "x") for number in numbers}
    found |= {
        base64.b64encode(der).decode()[:64],
        base64.urlsafe_b64encode(der).decode()[:64],
        der.hex()[:64],
    }
    return found


def configuration_secrets() -> set[str]:
    return {*django_settings.KEY_ENCRYPTION_KEYS, django_settings.SECRET_KEY}


def assert_no_secret(output: str, forbidden: dict[str, set[str]]) -> None:
    assert "PRIVATE KEY" not in output and "-----BEGIN" not in output
    for what, values in forbidden.items():
        for value in values:
            assert value not in output, f"{what} appears in the logs"


# --- in-process: every logger at DEBUG -----------------------------------------------------------
@pytest.fixture
def all_log_output(capfd) -> Iterator[Callable[[], str]]:
    """Everything logged anywhere: root and every logger at DEBUG, every stream handler, stdout/err."""
    buffer = io.StringIO()
    capture = logging.StreamHandler(buffer)
    capture.setLevel(logging.DEBUG)
    capture.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    loggers = [
        root,
        *(lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)),
    ]
    levels = {lg: lg.level for lg in loggers}
    streams: dict[logging.StreamHandler, object] = {}
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
        if lg is root or not lg.propagate:
            lg.addHandler(capture)
        for handler in lg.handlers:
            if (
                isinstance(handler, logging.StreamHandler)
                and handler is not capture
                and handler not in streams
            ):
                streams[handler] = handler.setStream(buffer)
    try:
        yield lambda: buffer.getvalue() + "".join(capfd.readouterr())
    finally:
        for lg, level in levels.items():
            lg.setLevel(level)
            lg.removeHandler(capture)
        for handler, stream in streams.items():
            handler.setStream(stream)


@pytest.fixture
def one_grant(db) -> None:
    cache.clear()
    key_caches_clear()
    signing_key_rotate()
    read = Permission.objects.create(code="orders.read")
    Audience.objects.create(identifier="api://orders", name="Orders").permissions.set([read])
    viewer = Role.objects.create(slug="viewer", name="Viewer")
    viewer.permissions.set([read])
    acme = Tenant.objects.create(slug="acme", name="Acme")
    Grant.objects.create(
        tenant=acme, role=viewer, subject_type="user", provider=entra.TENANT_ID, subject_id=entra.OID
    )
    yield
    cache.clear()
    key_caches_clear()


def exchange_fields(token: str) -> dict[str, str]:
    return {
        "grant_type": TOKEN_EXCHANGE,
        "subject_token": token,
        "subject_token_type": ACCESS_TOKEN_TYPE,
        "audience": "api://orders",
    }


def test_no_token_key_or_secret_is_logged_in_process(client, fake_entra, one_grant, settings, all_log_output):
    settings.DEBUG = True  # also log every SQL statement with its parameters
    tokens = catalogue(fake_entra)
    issued: list[str] = []
    for name, token in tokens.items():
        for as_json in (False, True):
            fields = exchange_fields(token)
            if as_json:
                response = client.post("/oauth2/token", fields, content_type="application/json")
            else:
                body = urlencode(fields)
                response = client.post(
                    "/oauth2/token", body, content_type="application/x-www-form-urlencoded"
                )
            if name == "valid":
                assert response.status_code == 200, response.content
                issued.append(response.json()["access_token"])
            else:
                assert response.status_code == 400, (name, response.content)

    key = SigningKey.objects.get(phase="active")
    der = key_store_get(key.store).unseal(kid=key.kid, sealed=key.store_reference)
    output = all_log_output()
    assert '"event":"token_exchange"' in output  # the capture saw the decision log
    assert "django.db.backends" in output  # and the SQL log
    assert_no_secret(
        output,
        {
            "a subject token": set().union(*(token_secrets(token) for token in tokens.values())),
            "an issued token": set().union(*(token_secrets(token) for token in issued)),
            "the private signing key": private_key_secrets(der),
            "KEY_ENCRYPTION_KEY or SECRET_KEY": configuration_secrets(),
        },
    )


# --- a real server: gunicorn with the production configuration ----------------------------------
def test_no_token_key_or_secret_reaches_the_server_output(fake_entra, tmp_path):
    database = tmp_path / "db.sqlite3"
    env = app_environment(
        database_url=f"sqlite:///{database}",
        var_dir=tmp_path,
        authority=fake_entra.authority,
        LOG_LEVEL="DEBUG",
        WEB_CONCURRENCY="1",
    )
    app_database_prepare(env, tmp_path)
    tokens = catalogue(fake_entra)
    issued: list[str] = []

    with app_server(env, tmp_path / "server.log", "-c", "config/gunicorn.py") as app:
        for name, token in tokens.items():
            answer = app.exchange(token)
            assert answer.status == (200 if name == "valid" else 400), (name, answer.body)
            if name == "valid":
                issued.append(answer.json()["access_token"])
        # A client that wrongly puts the token in the URL: the access log keeps the path only.
        misplaced = app.get("/oauth2/token?" + urlencode({"subject_token": tokens["valid"]}))
        assert misplaced.status == 405
        app.get("/readyz")

    with sqlite3.connect(database) as connection:
        kid, sealed = connection.execute(
            "SELECT kid, store_reference FROM keys_signingkey WHERE phase = 'active'"
        ).fetchone()
    der = LocalKeyStore().unseal(kid=kid, sealed=sealed)
    output = app.log.read_text()
    assert '"event":"token_exchange"' in output and '"path":"/oauth2/token"' in output
    assert_no_secret(
        output,
        {
            "a subject token": set().union(*(token_secrets(token) for token in tokens.values())),
            "an issued token": set().union(*(token_secrets(token) for token in issued)),
            "the private signing key": private_key_secrets(der),
            "KEY_ENCRYPTION_KEY or SECRET_KEY": {env["KEY_ENCRYPTION_KEY"]} | configuration_secrets(),
        },
    )
    assert json.dumps(tokens["valid"]) not in output
