"""The admin portal's sign-in pages: Microsoft (Entra) sign-in, passwords only where allowed."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.template.response import TemplateResponse

from accounts.oidc import oidc_enabled

LOGIN_TEMPLATE = "accounts/login.html"


def admin_login(request: HttpRequest) -> HttpResponse:
    """Django admin's login with a "Sign in with Microsoft" button; password POSTs refused when off."""
    if request.method == "POST" and not settings.PORTAL_PASSWORD_LOGIN:
        return HttpResponseForbidden("Password sign-in is turned off here: sign in with Microsoft.")
    context = {
        "portal_oidc": oidc_enabled(),
        "portal_password_login": settings.PORTAL_PASSWORD_LOGIN,
        "portal_sign_in_failed": request.GET.get("sign_in") == "failed",
    }
    response = admin.site.login(request, extra_context=context)
    if isinstance(response, TemplateResponse):  # not rendered yet: swap in our template
        response.template_name = LOGIN_TEMPLATE
    return response
