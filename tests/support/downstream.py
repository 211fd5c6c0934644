"""The three real processes of the downstream story: the fake Entra (in this process), the issuer
under gunicorn, and the example orders service (downstream/examples/orders_api) under gunicorn.

``issuer_template`` prepares an issuer database once (migrate, the orders policy, a first key);
``downstream_world`` copies it and starts the issuer and the orders service pointed at each other.
``issuer_active_signer`` opens the issuer's active key from that database, so tests can sign
tokens the issuer would never issue (expired, wrong ``typ``) with the issuer's real key.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from keys.stores import LocalKeyStore, Signer
from tests import fake_entra as entra
from tests.support.asgi import call
from tests.support.servers import (
    ROOT,
    Answer,
    AppServer,
    app_environment,
    app_server,
    free_port,
    serving,
)

EXAMPLE = ROOT / "downstream" / "examples" / "orders_api"
SECOND_OID = "66666666-6666-4666-8666-666666666666"
# entra.OID views acme's orders and approves globex's; SECOND_OID approves in acme.
ORDERS_POLICY = {
    "permissions": [
        {"code": "orders.read", "description": "Read orders", "requires_feature": None},
        {"code": "orders.approve", "description": "Approve orders", "requires_feature": None},
        {"code": "billing.read", "description": "Read invoices", "requires_feature": None},
    ],
    "audiences": [
        {"id": "api://orders", "name": "Orders API", "permissions": ["orders.read", "orders.approve"]},
        {"id": "api://billing", "name": "Billing API", "permissions": ["billing.read"]},
    ],
    "roles": [
        {"slug": "viewer", "name": "Viewer", "permissions": ["orders.read", "billing.read"], "tenant": None},
        {
            "slug": "approver",
            "name": "Approver",
            "permissions": ["orders.read", "orders.approve"],
            "tenant": None,
        },
    ],
    "tenants": [
        {"slug": "acme", "name": "Acme", "status": "active", "features": []},
        {"slug": "globex", "name": "Globex", "status": "active", "features": []},
    ],
    "grants": [
        {"tenant": "acme", "role": "viewer", "user": entra.OID, "valid_until": None},
        {"tenant": "globex", "role": "approver", "user": entra.OID, "valid_until": None},
        {"tenant": "acme", "role": "approver", "user": SECOND_OID, "valid_until": None},
    ],
}


def manage_output(env: dict[str, str], *args: str) -> str:
    """``manage.py`` of the issuer; its standard output (fails the test on a non-zero exit)."""
    done = subprocess.run(  # noqa: S603 (our interpreter and manage.py)
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def issuer_environment(database: Path, var_dir: Path, authority: str, **extra: str) -> dict[str, str]:
    """The issuer's development environment; its TOKEN_ISSUER is left to default to its own URL."""
    env = app_environment(database_url=f"sqlite:///{database}", var_dir=var_dir, authority=authority, **extra)
    env.pop("TOKEN_ISSUER", None)
    return env


def issuer_template(directory: Path, authority: str) -> Path:
    """A migrated issuer database with ORDERS_POLICY and one active ES256 key."""
    directory.mkdir(parents=True, exist_ok=True)
    database = directory / "issuer.sqlite3"
    env = issuer_environment(database, directory, authority)
    policy = directory / "policy.json"
    policy.write_text(json.dumps(ORDERS_POLICY))
    manage_output(env, "migrate", "--noinput")
    manage_output(env, "import_policy", str(policy))
    manage_output(env, "rotate_keys")
    return database


@dataclass
class OrdersService:
    """The example orders service under gunicorn; its stderr (every log line) goes to ``log``."""

    url: str
    log: Path
    process: subprocess.Popen = field(repr=False)

    def get(self, path: str, token: str | None = None) -> Answer:
        request = urllib.request.Request(self.url + path)  # noqa: S310 (our loopback server)
        return call(request, authorization=None if token is None else f"Bearer {token}")

    def post(self, path: str, token: str) -> Answer:
        request = urllib.request.Request(self.url + path, data=b"", method="POST")  # noqa: S310
        return call(request, authorization=f"Bearer {token}")


@contextmanager
def orders_service(directory: Path, issuer_url: str, **extra: str) -> Iterator[OrdersService]:
    """Migrate and seed (acme, globex: 3 orders each) the example, serve it with one gunicorn worker."""
    env = {name: value for name, value in os.environ.items() if name in ("PATH", "HOME", "LANG", "TMPDIR")}
    env.update(
        DJANGO_SETTINGS_MODULE="orders_api.settings",
        TOKEN_ISSUER=issuer_url,
        ORDERS_DATABASE=str(directory / "orders.sqlite3"),
        ALLOWED_HOSTS="127.0.0.1",
        PYTHONUNBUFFERED="1",
        **extra,
    )
    for command in (["migrate", "--noinput"], ["seed_orders", "acme", "globex"]):
        subprocess.run(  # noqa: S603
            [sys.executable, "manage.py", *command],
            cwd=EXAMPLE,
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
    port = free_port()
    log = directory / "orders.log"
    command = [sys.executable, "-m", "gunicorn", "orders_api.wsgi:application", "--bind", f"127.0.0.1:{port}"]
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603
            [*command, "--workers", "1", "--timeout", "30"],
            cwd=EXAMPLE,
            env=env,
            stdout=output,
            stderr=output,
        )
    service = OrdersService(url=f"http://127.0.0.1:{port}", log=log, process=process)
    with serving(service, process, log, what="the orders service"):
        yield service


@dataclass
class World:
    entra: entra.FakeEntra
    issuer: AppServer
    orders: OrdersService
    issuer_env: dict[str, str]  # for manage.py against the issuer's database
    database: Path

    def token(self, tenant: str = "acme", *, oid: str = entra.OID, **fields: str) -> str:
        """An access token from the issuer's exchange for ``tenant`` (audience api://orders by default)."""
        answer = self.issuer.exchange(self.entra.mint(oid=oid), tenant=tenant, **fields)
        assert answer.status == 200, answer.body
        return answer.json()["access_token"]


@contextmanager
def downstream_world(
    directory: Path,
    template: Path,
    fake_entra: entra.FakeEntra,
    *,
    issuer: dict[str, str],
    orders: dict[str, str],
) -> Iterator[World]:
    """A copy of the template database, the issuer serving it, and the orders service trusting it."""
    directory.mkdir(parents=True, exist_ok=True)
    database = directory / "issuer.sqlite3"
    shutil.copyfile(template, database)
    env = issuer_environment(database, directory, fake_entra.authority, **issuer)
    with (
        app_server(env, directory / "issuer.log") as app,
        orders_service(directory, app.url, **orders) as service,
    ):
        yield World(entra=fake_entra, issuer=app, orders=service, issuer_env=env, database=database)


def issuer_active_signer(database: Path) -> Signer:
    """The issuer's active signing key, opened from its database with the test run's KEY_ENCRYPTION_KEY."""
    with sqlite3.connect(database) as connection:
        kid, algorithm, reference = connection.execute(
            "SELECT kid, algorithm, store_reference FROM keys_signingkey WHERE phase = 'active'"
        ).fetchone()
    store = LocalKeyStore(secrets=[os.environ["KEY_ENCRYPTION_KEY"]])
    return store.signer(kid=kid, algorithm=algorithm, reference=bytes(reference))


def token_parts(token: str) -> tuple[dict, dict]:
    """The header and claims of a compact JWS, unverified (tests only read what they minted)."""
    header, claims, _signature = token.split(".")
    return tuple(
        json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))) for part in (header, claims)
    )  # type: ignore[return-value]
