"""Bounded GETs of an identity provider's metadata and JWKS, and the rule for where its keys may live.

HTTP goes through the standard library's ``http.client`` rather than ``urllib`` or ``requests``: it
follows no redirects, and setting the socket timeout before each read enforces one deadline for the
whole refresh, which ``urllib``'s per-operation timeout cannot (a server dripping bytes would hold a
worker indefinitely). No new dependency.
"""

from __future__ import annotations

import http.client
import json
import ssl
import time
from urllib.parse import SplitResult, urlsplit

from lib.env import is_loopback

DEFAULT_PORTS = {"https": 443, "http": 80}


class FetchFailed(Exception):
    """The document could not be had: unreachable, slow, an error status, too big, or not a JSON object."""


def json_get(url: str, *, deadline: float, max_bytes: int) -> dict:
    """GET ``url`` and parse a JSON object, all before ``deadline`` (a ``time.monotonic`` value)."""
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection: http.client.HTTPConnection | None = None
    try:
        # Inside the try: a deadline already spent (TimeoutError) or a bad port (ValueError)
        # is an unavailable document like any other, never an error that escapes to the client.
        if parts.hostname is None:
            raise ValueError("the URL names no host")
        if parts.scheme == "https":
            connection = http.client.HTTPSConnection(
                parts.hostname, parts.port, timeout=_remaining(deadline), context=ssl.create_default_context()
            )
        else:
            connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=_remaining(deadline))
        connection.request("GET", path, headers={"Accept": "application/json"})
        sock = connection.sock  # kept: getresponse() detaches it when the server closes after
        sock.settimeout(_remaining(deadline))
        response = connection.getresponse()
        if response.status != 200:
            raise FetchFailed(f"{parts.path} answered HTTP {response.status}")
        body = b""
        while len(body) <= max_bytes:
            sock.settimeout(_remaining(deadline))
            chunk = response.read1(64 * 1024)
            if not chunk:
                break
            body += chunk
        if len(body) > max_bytes:
            raise FetchFailed(f"{parts.path} answered more than {max_bytes} bytes")
    except (OSError, ValueError, http.client.HTTPException) as exc:  # socket.timeout is an OSError
        raise FetchFailed(f"{parts.path} unreachable ({exc.__class__.__name__})") from None
    finally:
        if connection is not None:
            connection.close()
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise FetchFailed(f"{parts.path} answered something that is not JSON") from None
    if not isinstance(document, dict):
        raise FetchFailed(f"{parts.path} answered JSON that is not an object")
    return document


def _remaining(deadline: float) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("deadline passed")
    return remaining


def jwks_uri_refusal(uri: str, *, origin: str) -> str | None:
    """Why a metadata document's ``jwks_uri`` is refused, or None: it must be on ``origin`` (scheme,
    host and port), over https, or plain http on a loopback authority (the fakes in tests).

    Microsoft's clouds and most OpenID providers publish their keys on the authority's own origin; a
    document pointing elsewhere, another port of the same host included, is refused, never followed.
    """
    parts = urlsplit(uri)
    try:
        uri_origin = origin_of(parts)
    except ValueError:
        return "the jwks_uri is not a plain absolute URL"
    if parts.username or parts.password or not parts.hostname:
        return "the jwks_uri is not a plain absolute URL"
    if uri_origin != origin_of(urlsplit(origin)):
        return "the jwks_uri is not on the authority's origin (scheme, host and port)"
    if parts.scheme == "https" or (parts.scheme == "http" and is_loopback(parts.hostname)):
        return None
    return "the jwks_uri is not https (plain http only on the loopback authority)"


def origin_of(parts: SplitResult) -> tuple[str, str | None, int | None]:
    """(scheme, host, port) with the scheme's default port filled in; ValueError on a malformed port."""
    return parts.scheme, parts.hostname, parts.port or DEFAULT_PORTS.get(parts.scheme)
