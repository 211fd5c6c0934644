"""URL map: the contract's paths (DESIGN.md "HTTP"), each app's own under its include."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from authz.admin import search_views
from config import metrics_api, views

urlpatterns = [
    # First: the exchange is most of the traffic, and Django tries the patterns in order.
    path("", include("authz.urls")),
    # Before admin/: the portal's own login (Microsoft sign-in) and logout (ends the Entra session).
    path("", include("accounts.urls")),
    path("oidc/", include("mozilla_django_oidc.urls")),
    # Before admin/: the portal's search box and smart paste (README "Search and smart paste").
    path("admin/search/", include(search_views.urls())),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path(
        ".well-known/oauth-authorization-server",
        views.authorization_server_metadata,
        name="oauth-authorization-server",
    ),
    path(
        ".well-known/openid-configuration",
        views.authorization_server_metadata,
        name="openid-configuration",
    ),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", metrics_api.metrics, name="metrics"),
    path("", include("keys.urls")),
]
