"""Content-Security-Policy on every answer: HTML (the portal) loads only our own files, the rest nothing.

Django 5.2 has no CSP of its own, and the portal needs no nonce (its pages, Django's admin included,
run no inline script), so one fixed header per kind of answer is enough:

- HTML: ``default-src 'self'`` (scripts, styles, images and fonts from our static files only;
  nothing inline but one hashed style attribute of a library, nothing evaluated), no plugins, no
  ``<base>``, never framed, and forms sent only to us and to the Entra authority: logging out, or a
  write that must first renew the sign-in, is a form whose answer redirects to Entra, and browsers
  hold that redirect to ``form-action``.
- Anything else (the exchange's JSON, the JWKS, metadata, metrics): nothing to load, never framed.

A view that sets its own ``Content-Security-Policy`` keeps it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

HEADER = "Content-Security-Policy"
API_POLICY = "default-src 'none'; frame-ancestors 'none'"
# The one inline style attribute the portal shows, in django-simple-history's history list
# (``<p class="paginator" style="border-top: 0">``), allowed by its hash and by nothing else.
HISTORY_PAGINATOR_STYLE = "'sha256-XMXSevYjgSjXgRafBFDvtjwX+yyWLrxfso9DcNZ9UXM='"


@cache
def portal_policy(authority: str) -> str:
    """The policy of the portal's pages, whose forms may lead to ``authority``'s origin (Entra)."""
    parts = urlsplit(authority)
    return "; ".join(
        [
            "default-src 'self'",
            f"style-src 'self' 'unsafe-hashes' {HISTORY_PAGINATOR_STYLE}",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
            f"form-action 'self' {parts.scheme}://{parts.netloc}",
        ]
    )


class ContentSecurityPolicyMiddleware:
    """Adds the policy that fits the answer's content type, unless the view chose one."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if HEADER not in response:
            html = response.get("Content-Type", "").startswith("text/html")
            response[HEADER] = portal_policy(settings.ENTRA_AUTHORITY) if html else API_POLICY
        return response
