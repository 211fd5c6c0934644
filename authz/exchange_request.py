"""Parsing of a token-exchange request's fields (RFC 8693 §2.1), before any token is looked at."""

from __future__ import annotations

import re
from dataclasses import dataclass

from authz.errors import INVALID_REQUEST, INVALID_SCOPE, INVALID_TARGET, UNSUPPORTED_GRANT_TYPE, ExchangeError
from authz.models import CODE_PATTERN, SLUG_PATTERN, is_audience_identifier
from authz.rfc8693 import ACCESS_TOKEN_TYPE, SUBJECT_TOKEN_TYPES, TOKEN_EXCHANGE

MAX_SUBJECT_TOKEN = 16 * 1024
MAX_FIELD = 1024


@dataclass(frozen=True)
class ExchangeRequest:
    """The checked fields of a token-exchange request."""

    subject_token: str
    audience: str
    scope: tuple[str, ...] | None = None
    tenant: str | None = None


_code = re.compile(CODE_PATTERN)
_slug = re.compile(SLUG_PATTERN)
_printable = re.compile(r"[\x21-\x7e]+")


def exchange_request_parse(*, data: dict[str, list[str]], default_audience: str | None) -> ExchangeRequest:
    """Check the fields of a token-exchange request, or raise the RFC error the client should see.

    Unknown fields are ignored (RFC 6749 §3.2 asks servers to ignore unrecognised parameters);
    a known field given twice is refused (RFC 6749 §3.2: parameters must not repeat).
    """
    fields: dict[str, str] = {}
    for name in (
        "grant_type",
        "subject_token",
        "subject_token_type",
        "requested_token_type",
        "audience",
        "resource",
        "scope",
        "tenant",
        "actor_token",
        "actor_token_type",
    ):
        values = data.get(name)
        if not values:
            continue
        if name in ("audience", "resource") and len(values) > 1:
            raise _error(
                INVALID_TARGET, f"give one {name}: a token is issued for one audience", "target.many"
            )
        if len(values) > 1:
            raise _error(INVALID_REQUEST, f"'{name}' is repeated", "request.repeated")
        limit = MAX_SUBJECT_TOKEN if name in ("subject_token", "actor_token") else MAX_FIELD
        if len(values[0]) > limit:
            raise _error(INVALID_REQUEST, f"'{name}' is too long", "request.too_long")
        if values[0] != "":
            fields[name] = values[0]

    grant_type = fields.get("grant_type")
    if grant_type is None:
        raise _error(INVALID_REQUEST, "grant_type is required", "request.grant_type")
    if grant_type != TOKEN_EXCHANGE:
        raise _error(UNSUPPORTED_GRANT_TYPE, f"only {TOKEN_EXCHANGE} is supported", "request.grant_type")
    if "actor_token" in fields or "actor_token_type" in fields:
        raise _error(INVALID_REQUEST, "delegation (actor_token) is not supported", "request.actor_token")
    subject_token = fields.get("subject_token")
    if subject_token is None:
        raise _error(INVALID_REQUEST, "subject_token is required", "request.subject_token")
    if not _printable.fullmatch(subject_token):
        raise _error(INVALID_REQUEST, "subject_token rejected: it is not a JWT", "subject_token.malformed")
    subject_token_type = fields.get("subject_token_type")
    if subject_token_type is None:
        raise _error(INVALID_REQUEST, "subject_token_type is required", "request.subject_token_type")
    if subject_token_type not in SUBJECT_TOKEN_TYPES:
        raise _error(
            INVALID_REQUEST,
            "subject_token_type must be the access_token or jwt token type",
            "request.subject_token_type",
        )
    requested = fields.get("requested_token_type")
    if requested is not None and requested != ACCESS_TOKEN_TYPE:
        raise _error(
            INVALID_REQUEST, "only the access_token token type is issued", "request.requested_token_type"
        )

    audience = fields.get("audience")
    resource = fields.get("resource")
    if audience and resource and audience != resource:
        raise _error(INVALID_TARGET, "audience and resource name different services", "target.conflict")
    audience = audience or resource or default_audience
    if audience is None:
        raise _error(INVALID_REQUEST, "audience is required", "request.audience")
    if not is_audience_identifier(audience):
        raise _error(INVALID_TARGET, "the audience is not registered", "audience.unknown")

    scope: tuple[str, ...] | None = None
    if "scope" in fields:
        values = fields["scope"].split(" ")
        if any(not _code.fullmatch(value) for value in values):
            raise _error(INVALID_SCOPE, "scope must be space-separated permission codes", "scope.malformed")
        scope = tuple(sorted(set(values)))

    tenant = fields.get("tenant")
    if tenant is not None and not _slug.fullmatch(tenant):
        raise _error(INVALID_REQUEST, "tenant must be a tenant slug", "request.tenant")

    return ExchangeRequest(subject_token=subject_token, audience=audience, scope=scope, tenant=tenant)


def _error(error: str, description: str, reason: str) -> ExchangeError:
    return ExchangeError(error, description, reason=reason)
