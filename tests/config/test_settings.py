"""Settings refuse bad values at start-up with a message that names the variable."""

import json

import pytest

from tests.support.settings import CHECK_DEPLOY, load_settings, run_in_production


def test_it_accepts_a_complete_production_environment():
    result = load_settings()
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"DEBUG": "maybe"}, "DEBUG"),
        ({"SECRET_KEY": None}, "SECRET_KEY"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY"),
        ({"KEY_ENCRYPTION_KEY": None}, "KEY_ENCRYPTION_KEY"),
        ({"KEY_ENCRYPTION_KEY": "too-short"}, "KEY_ENCRYPTION_KEY"),
        ({"ALLOWED_HOSTS": None}, "ALLOWED_HOSTS"),
        ({"ALLOWED_HOSTS": "*"}, "ALLOWED_HOSTS"),
        ({"TOKEN_ISSUER": None}, "TOKEN_ISSUER"),
        ({"TOKEN_ISSUER": "http://issuer.example.com"}, "TOKEN_ISSUER"),
        ({"TOKEN_ISSUER": "https://issuer.example.com/?q=1"}, "TOKEN_ISSUER"),
        ({"TOKEN_LIFETIME": "59"}, "TOKEN_LIFETIME"),
        ({"TOKEN_LIFETIME": "901"}, "TOKEN_LIFETIME"),
        ({"TOKEN_LIFETIME": "ten"}, "TOKEN_LIFETIME"),
        ({"ENTRA_AUTHORITY": "http://login.example.com"}, "ENTRA_AUTHORITY"),
        ({"ENTRA_AUTHORITY": "ftp://login.example.com"}, "ENTRA_AUTHORITY"),
        ({"ENTRA_TENANT_ID": None}, "ENTRA_TENANT_ID"),
        ({"ENTRA_AUDIENCE": None}, "ENTRA_AUDIENCE"),
        ({"ENTRA_REQUIRED_SCOPES": None}, "ENTRA_REQUIRED_SCOPES or ENTRA_REQUIRED_ROLES"),
        ({"KEY_ALGORITHM": "HS256"}, "KEY_ALGORITHM"),
        ({"KEY_STORE": "disk"}, "KEY_STORE"),
        ({"JWKS_MAX_AGE": "-1"}, "JWKS_MAX_AGE"),
        ({"JWKS_MAX_AGE": "7200", "KEY_PUBLISH_LEAD": "3600"}, "KEY_PUBLISH_LEAD"),
        ({"KEY_PUBLISH_LEAD": "2592000"}, "KEY_PUBLISH_LEAD"),
        ({"KEY_ROTATION_INTERVAL": "soon"}, "KEY_ROTATION_INTERVAL"),
        ({"KEY_ROTATION_CHECK_INTERVAL": "0"}, "KEY_ROTATION_CHECK_INTERVAL"),
        ({"PORT": "70000"}, "PORT"),
        ({"HTTPS": "sometimes"}, "HTTPS"),
        ({"CELERY_TASK_ALWAYS_EAGER": "perhaps"}, "CELERY_TASK_ALWAYS_EAGER"),
        ({"DATABASE_URL": "nosuchdb://x"}, "DATABASE_URL"),
    ],
)
def test_it_refuses_a_bad_value_and_names_the_variable(overrides, named):
    result = load_settings(**overrides)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert f"{named}:" in result.stderr


def test_required_roles_may_stand_in_for_required_scopes():
    result = load_settings(ENTRA_REQUIRED_SCOPES=None, ENTRA_REQUIRED_ROLES="Tokens.Exchange")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("secret", ["SECRET_KEY", "KEY_ENCRYPTION_KEY"])
def test_the_development_secrets_are_refused_in_production(secret):
    development = {
        "SECRET_KEY": "django-insecure-development-only-never-use-in-production",
        "KEY_ENCRYPTION_KEY": "development-only-key-encryption-key-not-secret",
    }
    result = load_settings(**{secret: development[secret]})
    assert result.returncode != 0
    assert f"{secret}:" in result.stderr


def test_it_allows_plain_http_authority_on_loopback_only():
    assert load_settings(ENTRA_AUTHORITY="http://127.0.0.1:9999").returncode == 0
    assert load_settings(ENTRA_AUTHORITY="http://localhost:9999").returncode == 0
    assert load_settings(ENTRA_AUTHORITY="http://10.0.0.1:9999").returncode != 0


def test_debug_runs_with_development_defaults():
    result = load_settings(
        DEBUG="true",
        SECRET_KEY=None,
        KEY_ENCRYPTION_KEY=None,
        ALLOWED_HOSTS=None,
        TOKEN_ISSUER=None,
        ENTRA_TENANT_ID=None,
        ENTRA_AUDIENCE=None,
        ENTRA_REQUIRED_SCOPES=None,
    )
    assert result.returncode == 0, result.stderr


# --- production hardening ------------------------------------------------------------------------
def test_the_deployment_checklist_passes_without_a_warning_in_production():
    result = run_in_production(CHECK_DEPLOY)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_the_deployment_checklist_fails_when_https_is_turned_off():
    result = run_in_production(CHECK_DEPLOY, HTTPS="false")
    assert result.returncode != 0
    assert "security.W004" in result.stderr  # no HSTS


PROBE_HTTPS = """
import json, django
django.setup()
from django.test import Client
client = Client(HTTP_HOST="issuer.example.com")
answers = {}
for path in ["/healthz", "/readyz", "/metrics", "/.well-known/oauth-authorization-server", "/oauth2/token"]:
    response = client.get(path)
    answers[path] = [response.status_code, response.get("Location")]
forwarded = client.get("/.well-known/oauth-authorization-server", HTTP_X_FORWARDED_PROTO="https")
answers["forwarded"] = [forwarded.status_code, forwarded.get("Strict-Transport-Security")]
cookie = client.get("/admin/login/", HTTP_X_FORWARDED_PROTO="https").cookies.get("csrftoken")
answers["csrf_cookie_secure"] = bool(cookie and cookie["secure"])
wrong_host = Client(HTTP_HOST="evil.example.com").get("/healthz", HTTP_X_FORWARDED_PROTO="https")
answers["wrong_host"] = wrong_host.status_code
print(json.dumps(answers))
"""


def probe_https(**overrides: str) -> dict:
    result = run_in_production(PROBE_HTTPS, **overrides)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_with_https_on_plain_http_is_redirected_except_the_probes_and_metrics():
    answers = probe_https()

    for path in ("/.well-known/oauth-authorization-server", "/oauth2/token"):
        assert answers[path] == [301, f"https://issuer.example.com{path}"]
    assert answers["/healthz"] == [200, None]
    assert answers["/readyz"][0] in (200, 503)  # answered, not redirected (no database here)
    assert answers["/metrics"] == [200, None]  # the test client is a direct loopback peer


def test_with_https_on_the_forwarded_proto_marks_the_request_secure_and_sends_hsts():
    answers = probe_https()

    assert answers["forwarded"] == [200, "max-age=31536000; includeSubDomains; preload"]
    assert answers["csrf_cookie_secure"] is True


def test_with_https_off_the_forwarded_proto_header_is_ignored():
    answers = probe_https(HTTPS="false")

    assert answers["/.well-known/oauth-authorization-server"] == [200, None]
    assert answers["forwarded"] == [200, None]  # not taken as https: no HSTS
    assert answers["csrf_cookie_secure"] is False


def test_a_host_outside_allowed_hosts_is_refused():
    assert probe_https()["wrong_host"] == 400
