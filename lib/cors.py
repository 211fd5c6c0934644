"""CORS for public documents: a page on any origin may read them, never with credentials."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.http import HttpRequest, HttpResponse

# How long a browser may reuse a preflight's answer; Chromium caps it at two hours.
PREFLIGHT_MAX_AGE = 7200


def readable_from_any_origin(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Answer with ``Access-Control-Allow-Origin: *`` and answer the preflight of a GET or HEAD.

    Only for documents that are the same for everyone (the JWKS, the metadata): ``*`` is never
    combined with credentials, so browsers send no cookies, and the answer needs no ``Vary: Origin``,
    which keeps it one entry in shared caches. ``ETag`` is exposed so that a page can revalidate
    with ``If-None-Match``, the one non-safelisted request header the preflight allows. Methods
    stay the view's business (``require_safe`` answers anything else with 405).
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if request.method == "OPTIONS" and "access-control-request-method" in request.headers:
            response = HttpResponse(status=204)
            response["Access-Control-Allow-Methods"] = "GET, HEAD"
            response["Access-Control-Allow-Headers"] = "If-None-Match"
            response["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE)
        else:
            response = view(request, *args, **kwargs)
            response["Access-Control-Expose-Headers"] = "ETag"
        response["Access-Control-Allow-Origin"] = "*"
        return response

    return wrapper
