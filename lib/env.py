"""Typed readers for settings that come from the environment.

Each reader fails with ``ImproperlyConfigured`` naming the variable, so a bad value stops start-up
with a message an operator can act on instead of surfacing later as a crash in a request.
"""

from __future__ import annotations

import builtins
import ipaddress
import os
import re
from collections.abc import Mapping
from typing import overload
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_PERIODS = {"second", "minute", "hour", "day", "s", "m", "h", "d"}


class Env:
    """Reads variables from one mapping (``os.environ`` by default) with typed helpers.

    The readers are named after the types they return, which shadows those builtins inside the class
    body: annotations after ``str`` spell them ``builtins.str`` and so on.
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self.environ = os.environ if environ is None else environ

    def raw(self, name: str) -> str | None:
        value = self.environ.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    @overload
    def str(self, name: str, default: str) -> str: ...
    @overload
    def str(self, name: str, default: None = None) -> str | None: ...
    def str(self, name: str, default: str | None = None) -> str | None:
        value = self.raw(name)
        return default if value is None else value

    def bool(self, name: builtins.str, default: builtins.bool) -> builtins.bool:
        value = self.raw(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ImproperlyConfigured(f"{name}: expected true or false, got {value!r}")

    def int(
        self,
        name: builtins.str,
        default: builtins.int,
        *,
        minimum: builtins.int | None = None,
        maximum: builtins.int | None = None,
    ) -> builtins.int:
        value = self.raw(name)
        if value is None:
            number = default
        else:
            try:
                number = int(value)
            except ValueError:
                raise ImproperlyConfigured(f"{name}: expected a whole number, got {value!r}") from None
        if minimum is not None and number < minimum:
            raise ImproperlyConfigured(f"{name}: must be at least {minimum}, got {number}")
        if maximum is not None and number > maximum:
            raise ImproperlyConfigured(f"{name}: must be at most {maximum}, got {number}")
        return number

    def list(
        self, name: builtins.str, default: builtins.list[builtins.str] | None = None
    ) -> builtins.list[builtins.str]:
        value = self.raw(name)
        if value is None:
            return list(default or [])
        return [item.strip() for item in value.split(",") if item.strip()]

    def choice(
        self, name: builtins.str, default: builtins.str, choices: tuple[builtins.str, ...]
    ) -> builtins.str:
        value = self.str(name, default)
        if value not in choices:
            raise ImproperlyConfigured(f"{name}: expected one of {', '.join(choices)}, got {value!r}")
        return value

    def rate(self, name: builtins.str, default: builtins.str) -> builtins.str | None:
        """A DRF rate such as ``100/minute``; ``off`` disables the limit."""
        value = self.str(name, default)
        if value.lower() == "off":
            return None
        count, _, period = value.partition("/")
        if not count.isdigit() or int(count) < 1 or period not in _PERIODS:
            raise ImproperlyConfigured(f"{name}: expected N/second|minute|hour|day or off, got {value!r}")
        return value

    @overload
    def url(self, name: builtins.str, default: builtins.str) -> builtins.str: ...
    @overload
    def url(self, name: builtins.str, default: None = None) -> builtins.str | None: ...
    def url(self, name: builtins.str, default: builtins.str | None = None) -> builtins.str | None:
        """An absolute https URL without query or fragment; plain http only for loopback hosts."""
        value = self.str(name, default)
        if value is None:
            return None
        value = value.rstrip("/")
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ImproperlyConfigured(f"{name}: expected an absolute https URL, got {value!r}")
        if parts.query or parts.fragment:
            raise ImproperlyConfigured(f"{name}: must not have a query or fragment, got {value!r}")
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            raise ImproperlyConfigured(
                f"{name}: plain http is allowed only for a loopback host, got {value!r}"
            )
        return value

    def origins(self, name: builtins.str) -> builtins.list[builtins.str]:
        """A comma list of web origins, each as a browser sends it in ``Origin``.

        An origin is ``scheme://host[:port]``: https, or plain http for a loopback host; no path
        (not even ``/``), query, fragment, user or wildcard. The scheme and host are lowercased and
        a default port dropped, so the value compares equal to the header. ``*`` is returned as
        given, for the caller to allow or refuse.
        """
        origins = []
        for value in self.list(name):
            if value == "*":
                origins.append(value)
                continue
            try:
                parts = urlsplit(value)
                port = parts.port
            except ValueError:
                raise ImproperlyConfigured(f"{name}: {value!r} is not an origin") from None
            host = (parts.hostname or "").lower()
            scheme = parts.scheme.lower()
            if (
                scheme not in ("https", "http")
                or not _ORIGIN_HOST.fullmatch(host)
                or parts.username is not None
                or value.lower() != f"{scheme}://{parts.netloc.lower()}"
            ):
                raise ImproperlyConfigured(
                    f"{name}: expected origins such as https://app.example.com (scheme, host and "
                    f"port only: no path, not even '/', no wildcard), got {value!r}"
                )
            if scheme == "http" and not is_loopback(host):
                raise ImproperlyConfigured(
                    f"{name}: plain http is allowed only for a loopback host, got {value!r}"
                )
            if ":" in host:
                host = f"[{host}]"
            default_port = {"https": 443, "http": 80}[scheme]
            origins.append(f"{scheme}://{host}" + (f":{port}" if port not in (None, default_port) else ""))
        return origins


# A DNS name or an IPv4 address (letters, digits, hyphens, dots), or an IPv6 address; no wildcard.
_ORIGIN_HOST = re.compile(r"[a-z0-9-]+(\.[a-z0-9-]+)*|[0-9a-f:.]*:[0-9a-f:.]*")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
