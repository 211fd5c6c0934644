"""OpenAPI for the plain Django views (JWKS, metadata, probes) that drf-spectacular cannot see.

drf-spectacular documents DRF views only. The JWKS and metadata views stay plain Django views on
purpose (they are the hottest read path and need no DRF machinery), so this postprocessing hook
adds their operations to the generated document, with paths resolved from the URL map.
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from lib.jwa import SIGNING_ALGORITHMS

_ETAG = {"description": "Strong validator of the body", "schema": {"type": "string"}}
_CACHE_CONTROL = {"description": "How long a verifier may cache the body", "schema": {"type": "string"}}
_IF_NONE_MATCH = {
    "name": "If-None-Match",
    "in": "header",
    "required": False,
    "description": "An ETag seen before: 304 when the body has not changed",
    "schema": {"type": "string"},
}
_NOT_MODIFIED = {"description": "Not modified (If-None-Match matched)", "headers": {"ETag": _ETAG}}

JSON_WEB_KEY = {
    "type": "object",
    "description": "A public JWK (RFC 7517) with its kid (RFC 7638 thumbprint), use and alg",
    "properties": {
        "kty": {"type": "string", "enum": ["EC", "RSA"]},
        "kid": {"type": "string"},
        "use": {"type": "string", "enum": ["sig"]},
        "alg": {"type": "string", "enum": sorted(SIGNING_ALGORITHMS)},
        "crv": {"type": "string"},
        "x": {"type": "string"},
        "y": {"type": "string"},
        "n": {"type": "string"},
        "e": {"type": "string"},
    },
    "required": ["kty", "kid", "use", "alg"],
}
JSON_WEB_KEY_SET = {
    "type": "object",
    "properties": {"keys": {"type": "array", "items": {"$ref": "#/components/schemas/JsonWebKey"}}},
    "required": ["keys"],
}
SERVER_METADATA = {
    "type": "object",
    "description": "RFC 8414 authorization server metadata",
    "properties": {
        "issuer": {"type": "string"},
        "token_endpoint": {"type": "string"},
        "jwks_uri": {"type": "string"},
        "grant_types_supported": {"type": "array", "items": {"type": "string"}},
        "token_endpoint_auth_methods_supported": {"type": "array", "items": {"type": "string"}},
        "response_types_supported": {"type": "array", "items": {"type": "string"}},
        "access_token_signing_alg_values_supported": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["issuer", "token_endpoint", "jwks_uri", "grant_types_supported"],
}
PROBE = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["ok", "ready", "unavailable"]},
        "checks": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "required": ["status"],
}


def _json(ref: str, description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
    }
    if headers:
        response["headers"] = headers
    return response


def _cached_get(operation_id: str, summary: str, ref: str, tag: str) -> dict[str, Any]:
    return {
        "get": {
            "operationId": operation_id,
            "summary": summary,
            "tags": [tag],
            "security": [],
            "parameters": [_IF_NONE_MATCH],
            "responses": {
                "200": _json(ref, summary, {"ETag": _ETAG, "Cache-Control": _CACHE_CONTROL}),
                "304": _NOT_MODIFIED,
            },
        }
    }


def _probe(operation_id: str, summary: str, statuses: tuple[str, ...]) -> dict[str, Any]:
    return {
        "get": {
            "operationId": operation_id,
            "summary": summary,
            "tags": ["probes"],
            "security": [],
            "responses": {status: _json("Probe", summary) for status in statuses},
        }
    }


def plain_views_add(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: add the JWKS, metadata and probe operations."""
    paths = result.setdefault("paths", {})
    paths[reverse("jwks")] = _cached_get("jwks", "Our public signing keys", "JsonWebKeySet", "well-known")
    paths[reverse("oauth-authorization-server")] = _cached_get(
        "authorization_server_metadata", "RFC 8414 metadata", "ServerMetadata", "well-known"
    )
    paths[reverse("openid-configuration")] = _cached_get(
        "openid_configuration", "RFC 8414 metadata at the OpenID path", "ServerMetadata", "well-known"
    )
    paths[reverse("healthz")] = _probe("healthz", "Liveness", ("200",))
    paths[reverse("readyz")] = _probe("readyz", "Readiness: database and an active key", ("200", "503"))
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(
        {
            "JsonWebKey": JSON_WEB_KEY,
            "JsonWebKeySet": JSON_WEB_KEY_SET,
            "ServerMetadata": SERVER_METADATA,
            "Probe": PROBE,
        }
    )
    return result
