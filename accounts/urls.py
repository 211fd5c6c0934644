"""The portal's routes of accounts: sign-in (admin's login and logout taken over), the providers page."""

from django.contrib import admin
from django.urls import path
from mozilla_django_oidc.views import OIDCLogoutView

from accounts import portal_providers, views

urlpatterns = [
    path("admin/login/", views.admin_login, name="portal-login"),
    # Logging out of the portal after an Entra sign-in also ends the Entra session.
    path("admin/logout/", OIDCLogoutView.as_view(), name="portal-logout"),
    # Read-only, for platform admins: the trusted identity providers.
    path(
        "admin/identity-providers/",
        admin.site.admin_view(portal_providers.identity_providers_page),
        name="portal-identity-providers",
    ),
]
