"""The typed environment readers: web origins."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from lib.env import Env


def origins(value: str) -> list[str]:
    return Env({"ORIGINS": value}).origins("ORIGINS")


def test_origins_are_written_as_browsers_send_them():
    assert origins("HTTPS://App.Example.com:443, https://admin.example.com:8443,http://[::1]:80") == [
        "https://app.example.com",
        "https://admin.example.com:8443",
        "http://[::1]",
    ]


def test_an_unset_list_has_no_origins():
    assert Env({}).origins("ORIGINS") == []


def test_a_wildcard_is_left_to_the_caller():
    assert origins("*") == ["*"]


@pytest.mark.parametrize("value", ["http://localhost:3000", "http://127.0.0.1:8080", "http://127.0.0.2"])
def test_plain_http_is_allowed_for_loopback(value):
    assert origins(value) == [value]


@pytest.mark.parametrize(
    "value",
    [
        "https://app.example.com/",
        "https://app.example.com/spa",
        "https://app.example.com?",
        "https://app.example.com#top",
        "https://user:secret@app.example.com",
        "https://*.example.com",
        "https://app.example.com:port",
        "https://bücher.example",
        "app.example.com",
        "ftp://app.example.com",
        "null",
        "http://app.example.com",
        "http://10.0.0.1:8080",
    ],
)
def test_anything_but_an_exact_origin_is_refused_with_the_name(value):
    with pytest.raises(ImproperlyConfigured, match=r"^ORIGINS: "):
        origins(value)
