"""One GET with a total deadline: the only network call the kit makes (metadata and JWKS).

The standard library's ``http.client`` rather than ``urllib``: it follows no redirects, and setting the
socket's timeout before every read bounds the whole exchange, connect to last byte, by one deadline,
which a per-operation timeout cannot (a server dripping one byte a second would hold a thread for
ever). The answer's size is capped too. No dependency beyond the standard library.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from issuer_verify.jose import unique_members

MAX_BYTES = 512 * 1024


class FetchFailed(Exception):
    """The URL did not answer a usable document before the deadline (the message names no secret)."""


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    status: int
    headers: Mapping[str, str]  # lower-case names: cache-control, etag, age
    body: bytes


def url_check(url: object, *, what: str, query: bool = True) -> str:
    """An absolute https URL, or plain http to a loopback host; ``ValueError`` naming ``what``.

    ``query=False`` also refuses a query (an issuer identifier has none, RFC 8414 §2).
    """
    if not isinstance(url, str):
        raise ValueError(f"{what} must be a string")
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        raise ValueError(f"{what} has a malformed port") from None
    if not parts.hostname or parts.username or parts.password or parts.fragment:
        raise ValueError(f"{what} must be an absolute URL without credentials or fragment")
    if parts.query and not query:
        raise ValueError(f"{what} must have no query")
    if parts.scheme == "https" or (parts.scheme == "http" and is_loopback(parts.hostname)):
        return url
    raise ValueError(f"{what} must be https (plain http only on a loopback host)")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def http_get(
    url: str, *, deadline: float, headers: Mapping[str, str] | None = None, max_bytes: int = MAX_BYTES
) -> HttpAnswer:
    """GET ``url`` and read the answer before ``deadline`` (a ``time.monotonic`` reading).

    Answers 200 and 304; anything else, a transport error, a spent deadline or an oversized body
    raises ``FetchFailed``.
    """
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection: http.client.HTTPConnection | None = None
    try:
        if parts.hostname is None:
            raise ValueError("the URL names no host")
        if parts.scheme == "https":
            connection = http.client.HTTPSConnection(
                parts.hostname, parts.port, timeout=_remaining(deadline), context=ssl.create_default_context()
            )
        else:
            connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=_remaining(deadline))
        request_headers = {"Accept": "application/json", "User-Agent": "issuer-verify", **(headers or {})}
        connection.request("GET", path, headers=request_headers)
        sock = connection.sock  # kept: getresponse() detaches it when the server closes after answering
        if sock is None:
            raise OSError("no connection")
        sock.settimeout(_remaining(deadline))
        response = connection.getresponse()
        if response.status not in (200, 304):
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
        answer_headers = {
            name: value
            for name in ("cache-control", "etag", "age")
            if (value := response.getheader(name)) is not None
        }
    # socket.timeout and TimeoutError are OSErrors; a malformed port or host is a ValueError.
    except (OSError, ValueError, http.client.HTTPException) as exc:
        raise FetchFailed(f"{parts.path or '/'} unreachable ({exc.__class__.__name__})") from None
    finally:
        if connection is not None:
            connection.close()
    return HttpAnswer(status=response.status, headers=answer_headers, body=body)


def json_document(answer: HttpAnswer, *, what: str) -> dict[str, Any]:
    """The answer's body as a JSON object; ``FetchFailed`` otherwise."""
    try:
        document = json.loads(answer.body.decode("utf-8"), object_pairs_hook=unique_members)
    except (ValueError, RecursionError):
        raise FetchFailed(f"the {what} is not JSON") from None
    if not isinstance(document, dict):
        raise FetchFailed(f"the {what} is not a JSON object")
    return document


def _remaining(deadline: float) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("the deadline passed")
    return remaining
