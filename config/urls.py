"""URL map: the contract's paths (DESIGN.md "HTTP"), each app's own under its include."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("", include("keys.urls")),
    path("", include("authz.urls")),
]
