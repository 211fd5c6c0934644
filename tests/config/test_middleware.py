"""The portal's middleware runs for the portal and is skipped by the stateless endpoints."""

from __future__ import annotations

import pytest
from django.http import HttpResponse
from django.test import RequestFactory
from django.urls import resolve

from config.middleware import (
    STATELESS_PATHS,
    PortalAuthenticationMiddleware,
    PortalEntraSessionRefresh,
    PortalMessageMiddleware,
    PortalSessionMiddleware,
    portal_history_middleware,
)


def chain(view):
    """The portal's middleware in settings' order around ``view``."""
    handler = portal_history_middleware(view)
    for middleware in (PortalMessageMiddleware, PortalEntraSessionRefresh, PortalAuthenticationMiddleware):
        handler = middleware(handler)
    return PortalSessionMiddleware(handler)


def seen_by_the_view(path: str) -> set[str]:
    seen: set[str] = set()

    def view(request):
        seen.update(name for name in ("session", "user", "_messages") if hasattr(request, name))
        return HttpResponse("ok")

    assert chain(view)(RequestFactory().post(path)).status_code == 200
    return seen


@pytest.mark.parametrize("path", sorted(STATELESS_PATHS))
def test_a_stateless_endpoint_gets_no_session_user_or_messages(path):
    assert seen_by_the_view(path) == set()


@pytest.mark.parametrize("path", ["/admin/", "/admin/login/", "/oauth2/token/", "/oidc/callback/"])
def test_every_other_path_goes_through_the_portal_middleware(path):
    assert seen_by_the_view(path) == {"session", "user", "_messages"}


@pytest.mark.parametrize("path", sorted(STATELESS_PATHS))
def test_every_stateless_path_is_a_route(path):
    assert resolve(path).url_name
