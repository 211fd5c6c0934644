"""The JWKS endpoint: the public keys from one cached read, with ETag and 304, readable from any origin."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.cache import get_conditional_response
from django.views.decorators.http import require_safe

from keys.selectors import jwks_document_get
from lib.cors import readable_from_any_origin

# application/json rather than the registered application/jwk-set+json: it is what Entra, Google
# and Auth0 serve, and what CDNs compress and JSON clients accept without configuration.
JWKS_CONTENT_TYPE = "application/json"


@readable_from_any_origin
@require_safe
def jwks(request: HttpRequest) -> HttpResponse:
    """GET/HEAD the JWKS; a matching If-None-Match (RFC 9110 weak comparison, lists, *) gets 304."""
    body, etag = jwks_document_get()
    response = HttpResponse(body, content_type=JWKS_CONTENT_TYPE)
    response["Cache-Control"] = f"public, max-age={settings.JWKS_MAX_AGE}"
    response["ETag"] = etag
    # Given a response it never returns None; the stubs do not say so.
    return get_conditional_response(request, etag=etag, response=response)  # type: ignore[return-value]
