"""Service endpoints: RFC 8414 metadata at both well-known paths, liveness and readiness."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from keys.services import signing_key_rotate

METADATA_PATHS = ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"]
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", METADATA_PATHS)
def test_metadata_names_the_issuer_and_its_endpoints(client, settings, path):
    response = client.get(path)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    document = response.json()
    assert document["issuer"] == settings.TOKEN_ISSUER == "https://issuer.test"
    assert document["token_endpoint"] == "https://issuer.test/oauth2/token"
    assert document["jwks_uri"] == "https://issuer.test/.well-known/jwks.json"
    assert document["grant_types_supported"] == ["urn:ietf:params:oauth:grant-type:token-exchange"]
    assert document["token_endpoint_auth_methods_supported"] == ["none"]
    assert document["response_types_supported"] == []
    assert settings.KEY_ALGORITHM in document["access_token_signing_alg_values_supported"]
    assert "none" not in document["access_token_signing_alg_values_supported"]


def test_both_paths_serve_the_same_document(client):
    first, second = (client.get(path) for path in METADATA_PATHS)

    assert first.content == second.content
    assert first["ETag"] == second["ETag"]


@pytest.mark.parametrize("path", METADATA_PATHS)
def test_metadata_is_cacheable_and_revalidates_with_304(client, path):
    response = client.get(path)
    etag = response["ETag"]

    assert response["Cache-Control"].startswith("public, max-age=")
    assert etag.startswith('"') and etag.endswith('"')
    revalidated = client.get(path, headers={"if-none-match": etag})
    assert revalidated.status_code == 304
    assert revalidated.content == b""


@pytest.mark.parametrize("path", [*METADATA_PATHS, "/healthz", "/readyz"])
def test_it_refuses_methods_other_than_get_and_head(client, path):
    response = client.post(path)

    assert response.status_code == 405
    assert set(response["Allow"].split(", ")) == {"GET", "HEAD"}


def test_healthz_answers_without_touching_the_database(client):
    # No django_db mark: any query here would raise instead of answering.
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"


@pytest.mark.django_db
def test_readyz_is_ready_with_a_reachable_database_and_an_active_key(client):
    signing_key_rotate()

    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "signing_key": "ok", "key_store": "ok"},
    }
    assert response["Cache-Control"] == "no-store"


@pytest.mark.django_db
def test_readyz_is_unavailable_without_an_active_key(client):
    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "ok", "signing_key": "no active key", "key_store": "ok"}


@pytest.mark.parametrize(
    "database_url",
    [
        # Nothing listens on port 1: the connection is refused at once, as when PostgreSQL is down.
        "postgres://postgres@127.0.0.1:1/issuer_unreachable",
        "sqlite:////nonexistent-directory/issuer.sqlite3",
    ],
)
def test_readyz_is_unavailable_not_failing_when_the_database_is_down(database_url):
    # A process of its own: the test database connection of this one cannot be taken down safely.
    script = textwrap.dedent(
        """
        import json, django
        django.setup()
        from django.test import Client
        response = Client().get("/readyz")
        print(json.dumps({"status": response.status_code, "body": response.json()}))
        """
    )
    environment = {**os.environ, "DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "config.settings"}

    completed = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )

    assert completed.returncode == 0, completed.stderr
    outcome = json.loads(completed.stdout.strip().splitlines()[-1])
    assert outcome["status"] == 503
    assert outcome["body"] == {
        "status": "unavailable",
        "checks": {"database": "unreachable", "signing_key": "not checked", "key_store": "ok"},
    }
