"""Structured logs: one JSON object per line in production, the decision log nested as an object."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lib.logformat import JsonFormatter
from tests.support.settings import PRODUCTION

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def json_lines():
    """Every record of the root logger, formatted by the production formatter, as parsed lines."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(logging.INFO)

    def lines() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    yield lines
    root.removeHandler(handler)
    root.setLevel(previous)


def test_a_record_becomes_one_json_line_with_time_level_logger_and_message(json_lines):
    logging.getLogger("tests.sample").warning("keys of %s not refreshed", "directory-1")

    [line] = [line for line in json_lines() if line["logger"] == "tests.sample"]
    assert line["level"] == "WARNING"
    assert line["message"] == "keys of directory-1 not refreshed"
    assert line["time"].endswith("+00:00")


def test_a_multiline_or_quoted_message_stays_on_one_line(json_lines):
    logging.getLogger("tests.sample").info('a "quoted"\nsecond line\n{"forged": true}')

    [line] = [line for line in json_lines() if line["logger"] == "tests.sample"]
    assert line["message"] == 'a "quoted"\nsecond line\n{"forged": true}'
    assert "forged" not in line


def test_an_exception_is_included_as_text(json_lines):
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("tests.sample").exception("failed")

    [line] = [line for line in json_lines() if line["logger"] == "tests.sample"]
    assert "ValueError: boom" in line["exception"]


def test_the_decision_log_is_a_nested_object_not_an_escaped_string(exchange, orders_policy, json_lines):
    orders_policy.grant(orders_policy.viewer, orders_policy.acme)

    assert exchange().status_code == 200

    [line] = [line for line in json_lines() if line["logger"] == "authz.decisions"]
    decision = line["message"]
    assert isinstance(decision, dict)
    assert decision["event"] == "token_exchange"
    assert (decision["outcome"], decision["reason"], decision["tenant"]) == ("issued", "ok", "acme")
    assert line["level"] == "INFO"


def test_a_refused_exchange_logs_its_reason_at_warning(exchange, fake_entra, orders_policy, json_lines):
    assert exchange(fake_entra.mint(exp=1_000)).status_code == 400

    [line] = [line for line in json_lines() if line["logger"] == "authz.decisions"]
    assert line["level"] == "WARNING"
    assert line["message"]["reason"] == "subject_token.expired"


LOG_ONE = """
import logging, django
django.setup()
logging.getLogger("probe").warning("hello")
"""


def logs_of_a_fresh_process(code: str, **overrides: str | None) -> list[str]:
    """What a fresh interpreter with the production environment (and ``overrides``) logs running ``code``."""
    environment = {"PATH": os.environ["PATH"], "VAR_DIR": os.environ["VAR_DIR"], **PRODUCTION}
    environment["DJANGO_SETTINGS_MODULE"] = "config.settings"
    for name, value in overrides.items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    result = subprocess.run(  # noqa: S603 - our interpreter running our own code
        [sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stderr.strip().splitlines()


def log_in_a_fresh_process(**overrides: str | None) -> str:
    return logs_of_a_fresh_process(LOG_ONE, **overrides)[-1]


def test_production_logs_json_by_default():
    line = json.loads(log_in_a_fresh_process())
    assert (line["logger"], line["message"]) == ("probe", "hello")


def test_debug_logs_plain_text_by_default():
    line = log_in_a_fresh_process(DEBUG="true")
    assert line.endswith("WARNING probe hello")
    assert not line.startswith("{")


def test_log_format_overrides_the_default():
    assert log_in_a_fresh_process(LOG_FORMAT="plain").endswith("WARNING probe hello")
    assert json.loads(log_in_a_fresh_process(DEBUG="true", LOG_FORMAT="json"))["message"] == "hello"


def test_an_unknown_log_format_stops_start_up():
    environment = {"PATH": os.environ["PATH"], "VAR_DIR": os.environ["VAR_DIR"], **PRODUCTION}
    result = subprocess.run(
        [sys.executable, "-c", "import config.settings"],
        cwd=ROOT,
        env={**environment, "LOG_FORMAT": "xml"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "LOG_FORMAT:" in result.stderr


REFUSE_AN_EXCHANGE = """
import django
django.setup()
from django.test import Client
response = Client(HTTP_HOST="issuer.example.com").post(
    "/oauth2/token",
    "grant_type=password",
    content_type="application/x-www-form-urlencoded",
    HTTP_X_FORWARDED_PROTO="https",
)
assert response.status_code == 400, response.status_code
"""


@pytest.mark.parametrize("debug", ["true", "false"])
def test_a_refused_exchange_logs_bad_request_once(debug):
    lines = logs_of_a_fresh_process(REFUSE_AN_EXCHANGE, DEBUG=debug)

    assert len([line for line in lines if "Bad Request: /oauth2/token" in line]) == 1


REFUSE_A_HOST = """
import django
django.setup()
from django.test import Client
assert Client(HTTP_HOST="evil.example.com").get("/healthz").status_code == 400
"""


def test_a_bad_host_header_is_one_json_line_at_warning_without_a_traceback():
    lines = [json.loads(line) for line in logs_of_a_fresh_process(REFUSE_A_HOST)]

    [line] = [line for line in lines if line["logger"] == "django.security.DisallowedHost"]
    assert line["level"] == "WARNING"
    assert "evil.example.com" in line["message"]
    assert "exception" not in line


def test_a_bad_host_header_is_one_plain_line_at_warning_in_debug():
    lines = logs_of_a_fresh_process(REFUSE_A_HOST, DEBUG="true", ALLOWED_HOSTS="issuer.example.com")

    [line] = [line for line in lines if "evil.example.com" in line]
    assert "WARNING django.security.DisallowedHost" in line
    assert not any("Traceback" in line for line in lines)
