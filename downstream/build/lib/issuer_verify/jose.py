"""The compact JWS (RFC 7515) of an access token: strict parsing and the header rules of RFC 8725.

Parsing is deliberately narrow, because two parsers that disagree about one token is how confusion
attacks start: three base64url segments in the canonical encoding only (no padding, no second
spelling of the same bytes), UTF-8 JSON objects whose members are named once, no ``NaN`` or
``Infinity``, a size cap before anything is decoded. The header may hold ``alg``, ``typ`` and ``kid``
and nothing else: the issuer sends exactly these, so ``jku``, ``x5u``, ``jwk``, ``x5c`` (keys the
token would choose itself) or anything unknown mark a forged or confused token.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from issuer_verify.errors import InvalidToken

# RFC 8725 §3.1: an allow-list; never ``none``, never an HMAC whatever the header says.
SUPPORTED_ALGORITHMS = ("ES256", "RS256", "PS256")
# RFC 9068 §4 (and RFC 7515 §4.1.9: media types compare case-insensitively, ``application/`` optional).
ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
HEADER_MEMBERS = frozenset({"alg", "typ", "kid"})
# The issuer's kids are RFC 7638 thumbprints (43 base64url characters); leave room, refuse the odd.
KID = re.compile(r"[A-Za-z0-9_=.-]{1,128}")
SEGMENT = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class SignedToken:
    """A compact JWS split and decoded, its signature not yet verified."""

    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes


def token_parse(token: object, *, max_length: int) -> SignedToken:
    """Split and decode a compact JWS; ``InvalidToken("malformed")`` for anything off the narrow path."""
    if not isinstance(token, str) or not token:
        raise InvalidToken("malformed", "not a string")
    if len(token) > max_length:
        raise InvalidToken("malformed", f"longer than {max_length} characters")
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken("malformed", "not three dot-separated segments")
    header_part, claims_part, signature_part = parts
    # The signature may be empty here (``alg: none``); the algorithm check names that case better.
    if not (SEGMENT.fullmatch(header_part) and SEGMENT.fullmatch(claims_part)):
        raise InvalidToken("malformed", "a segment is not base64url")
    if signature_part and not SEGMENT.fullmatch(signature_part):
        raise InvalidToken("malformed", "the signature is not base64url")
    return SignedToken(
        header=json_object(b64decode(header_part)),
        claims=json_object(b64decode(claims_part)),
        signing_input=f"{header_part}.{claims_part}".encode("ascii"),
        signature=b64decode(signature_part),
    )


def header_check(header: Mapping[str, Any], *, algorithms: frozenset[str]) -> tuple[str, str]:
    """The header's (alg, kid) once every header rule holds; otherwise ``InvalidToken``."""
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in algorithms:
        raise InvalidToken("unsupported_alg", "alg is not in the allow-list")
    if "crit" in header:
        # We implement no JWS extension, so any critical one is one we don't understand (RFC 7515 4.1.11).
        raise InvalidToken("crit")
    extra = header.keys() - HEADER_MEMBERS
    if extra:
        raise InvalidToken("header", "members other than alg, typ and kid")
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
        raise InvalidToken("typ")
    kid = header.get("kid")
    if not isinstance(kid, str) or not KID.fullmatch(kid):
        raise InvalidToken("malformed", "no usable kid in the header")
    return alg, kid


def b64decode(segment: str) -> bytes:
    """Canonical unpadded base64url only; anything else is ``malformed``."""
    try:
        decoded = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (ValueError, binascii.Error):
        raise InvalidToken("malformed", "a segment is not base64url") from None
    # A second spelling of the same bytes (trailing bits set, a stray length) is refused.
    if base64.urlsafe_b64encode(decoded).rstrip(b"=").decode("ascii") != segment:
        raise InvalidToken("malformed", "a segment is not canonical base64url")
    return decoded


def json_object(raw: bytes) -> dict[str, Any]:
    """A UTF-8 JSON object, members named once, finite numbers; anything else is ``malformed``."""
    try:
        value = _DECODER.decode(raw.decode("utf-8"))
    # UnicodeDecodeError and JSONDecodeError are ValueErrors; deep nesting raises RecursionError.
    except (ValueError, RecursionError):
        raise InvalidToken("malformed", "a segment is not a JSON object") from None
    if not isinstance(value, dict):
        raise InvalidToken("malformed", "a segment is not a JSON object")
    return value


def unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook``: a JSON object whose members are named once, else ``ValueError``."""
    members = dict(pairs)
    if len(members) != len(pairs):
        raise ValueError("a member is named twice")
    return members


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# One strict decoder, built once: json.loads with hooks would build a new one on every call.
_DECODER = json.JSONDecoder(object_pairs_hook=unique_members, parse_constant=_no_constant)
