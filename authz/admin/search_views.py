"""The portal's search box and smart paste: the pages and JSON endpoints under ``/admin/search/``.

Every view runs behind the admin site's own check (staff session, else the login page) and works
within the signed-in user's tenants (``tenant_scope``). The search page answers a question with a
redirect to the list it asks for, filtered by that list's own parameters; what was understood is
kept in the session for that one list address, where the search box shows it as chips.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_POST, require_safe

from authz.admin.tenant_scope import administered_tenant_ids
from authz.models import Grant
from authz.search.interpret import TARGET_FILTERS
from authz.search.portal import PASTE_MAX, QUESTION_MAX, paste_propose, search_interpret, search_run

# The session key of the last search, read by admin/authz/search_box.html on the list it led to.
SESSION_KEY = "portal_search"
# The filters a chip may send instead of a question (the grant list's take them all).
GIVEN = ("target", *sorted(TARGET_FILTERS["grants"]))
# The seam for tests: the moment "next week" and "in 30 days" count from.
clock: Callable[[], datetime] = timezone.now


def _scope(request: HttpRequest) -> frozenset[int] | None:
    """The user's tenants (``None``: all); a staff user who administers none has nothing to search
    (the catalogue's pages are closed to them too), so 403."""
    tenant_ids = administered_tenant_ids(request)
    if tenant_ids is not None and not tenant_ids:
        raise PermissionDenied
    return tenant_ids


def _question(request: HttpRequest) -> str | HttpResponse:
    question = request.GET.get("q", "").strip()
    if not question:
        return JsonResponse({"error": "Ask something: q is missing or empty."}, status=400)
    if len(question) > QUESTION_MAX:
        return JsonResponse({"error": f"Keep the question within {QUESTION_MAX} characters."}, status=400)
    return question


@require_safe
def search_interpret_view(request: HttpRequest) -> HttpResponse:
    """``GET /admin/search/interpret?q=…``: what a question is understood as, as JSON."""
    tenant_ids = _scope(request)
    question = _question(request)
    if isinstance(question, HttpResponse):
        return question
    answer = search_interpret(tenant_ids=tenant_ids, question=question, now=clock())
    return JsonResponse(answer)


@require_safe
def search_page(request: HttpRequest) -> HttpResponse:
    """``GET /admin/search/?q=…`` (the search box without script) or with filters (a chip edited):
    to the list asked for, filtered."""
    tenant_ids = _scope(request)
    given = request.GET if "target" in request.GET else None
    question = request.GET.get("q", "").strip()
    if given is None and not question:
        return HttpResponseRedirect(reverse("admin:authz_grant_changelist"))
    if len(question) > QUESTION_MAX or any(len(request.GET.get(name, "")) > QUESTION_MAX for name in GIVEN):
        return HttpResponse(f"Keep the question within {QUESTION_MAX} characters.", status=400)
    outcome = search_run(tenant_ids=tenant_ids, question=question, given=given, now=clock())
    if outcome.target == "grants":
        request.session[SESSION_KEY] = outcome.for_page()
    else:
        _tell(request, outcome.chips, outcome.unmatched)
    return HttpResponseRedirect(outcome.url)


def _tell(request: HttpRequest, chips: list[dict[str, Any]], unmatched: list[str]) -> None:
    """For lists without the search box: what was understood, as a message above the list."""
    understood = "; ".join(f"{chip['title']}: {', '.join(chip['shown'])}" for chip in chips) or "no filter"
    text = f"Search understood {understood}."
    if unmatched:
        text += f" Not understood: {', '.join(unmatched)}."
    messages.info(request, text)


@require_POST
def paste_view(request: HttpRequest) -> HttpResponse:
    """``POST /admin/search/paste`` (``text``): the add-grant form's fields proposed by a pasted request."""
    grant_admin = admin.site.get_model_admin(Grant)
    if not grant_admin.has_add_permission(request):
        raise PermissionDenied
    text = request.POST.get("text", "")
    if not text.strip():
        return JsonResponse({"error": "Paste the request's text first."}, status=400)
    if len(text) > PASTE_MAX:
        return JsonResponse({"error": f"Paste at most {PASTE_MAX} characters."}, status=400)
    return JsonResponse(paste_propose(tenant_ids=administered_tenant_ids(request), text=text, now=clock()))


def urls() -> list:
    """The search URLs, each behind the admin site's staff check (and its CSRF protection)."""
    site = admin.site
    return [
        path("", site.admin_view(search_page), name="portal-search"),
        path("interpret", site.admin_view(search_interpret_view), name="portal-search-interpret"),
        path("paste", site.admin_view(paste_view), name="portal-search-paste"),
    ]
