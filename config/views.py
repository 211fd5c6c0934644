"""Service-level endpoints: RFC 8414 metadata, liveness and readiness."""

from __future__ import annotations

import hashlib
import json
import logging
from functools import cache

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.cache import get_conditional_response
from django.views.decorators.http import require_safe

from authz.rfc8693 import TOKEN_EXCHANGE
from keys.selectors import signing_key_active_exists
from keys.services import key_store_readiness
from lib.cors import readable_from_any_origin
from lib.jwa import SIGNING_ALGORITHMS

logger = logging.getLogger(__name__)

# The metadata changes only with a deployment; an hour keeps verifiers from re-asking on every start.
METADATA_MAX_AGE = 3600
# Readiness answers within a probe's budget even when PostgreSQL hangs on a query.
READINESS_STATEMENT_TIMEOUT = "1500ms"


@cache
def _metadata_document() -> tuple[bytes, str]:
    """The metadata body and its strong ETag: built once per process, settings never change."""
    issuer = settings.TOKEN_ISSUER
    document = {
        "issuer": issuer,
        "token_endpoint": f"{issuer}/oauth2/token",
        "jwks_uri": f"{issuer}{reverse('jwks')}",
        "grant_types_supported": [TOKEN_EXCHANGE],
        # The subject token is the credential: the exchange has no client authentication of its own.
        "token_endpoint_auth_methods_supported": ["none"],
        # RFC 8414 requires the member; there is no authorization endpoint, so no response type.
        "response_types_supported": [],
        # Every algorithm KEY_ALGORITHM may name: a retiring key keeps verifying after the setting
        # changes, so verifiers must accept all of them; each JWK also carries its own `alg`.
        "access_token_signing_alg_values_supported": sorted(SIGNING_ALGORITHMS),
    }
    body = json.dumps(document, separators=(",", ":")).encode()
    return body, f'"{hashlib.sha256(body).hexdigest()[:32]}"'


@readable_from_any_origin
@require_safe
def authorization_server_metadata(request: HttpRequest) -> HttpResponse:
    """RFC 8414 metadata, also served at the OpenID path for libraries that only look there."""
    body, etag = _metadata_document()
    response = HttpResponse(body, content_type="application/json")
    response["Cache-Control"] = f"public, max-age={METADATA_MAX_AGE}"
    response["ETag"] = etag
    # Given a response it never returns None; the stubs do not say so.
    return get_conditional_response(request, etag=etag, response=response)  # type: ignore[return-value]


@require_safe
def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness: the process answers HTTP; touches no database so a DB outage does not restart it."""
    return _json_response({"status": "ok"}, status=200)


@require_safe
def readyz(request: HttpRequest) -> HttpResponse:
    """Readiness: 200 when the database answers and a key is active, else 503 naming the check."""
    checks = {"database": "ok", "signing_key": "ok", "key_store": key_store_readiness()}
    try:
        _database_ping()
    except DatabaseError:
        logger.warning("readiness: the database does not answer", exc_info=True)
        checks["database"] = "unreachable"
        checks["signing_key"] = "not checked"
    else:
        try:
            if not signing_key_active_exists():
                checks["signing_key"] = "no active key"
        except DatabaseError:
            logger.warning("readiness: cannot read the signing keys", exc_info=True)
            checks["signing_key"] = "unreadable"
    ready = all(result == "ok" for result in checks.values())
    document = {"status": "ready" if ready else "unavailable", "checks": checks}
    return _json_response(document, status=200 if ready else 503)


def _database_ping() -> None:
    """One round trip to the database, bounded by a statement timeout on PostgreSQL."""
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT set_config('statement_timeout', %s, true)", [READINESS_STATEMENT_TIMEOUT])
        cursor.execute("SELECT 1")


def _json_response(document: dict, status: int) -> HttpResponse:
    response = HttpResponse(json.dumps(document), content_type="application/json", status=status)
    response["Cache-Control"] = "no-store"
    return response
