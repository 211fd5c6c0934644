"""The portal's sign-in routes: they take over Django admin's login and logout pages."""

from django.urls import path
from mozilla_django_oidc.views import OIDCLogoutView

from accounts import views

urlpatterns = [
    path("admin/login/", views.admin_login, name="portal-login"),
    # Logging out of the portal after an Entra sign-in also ends the Entra session.
    path("admin/logout/", OIDCLogoutView.as_view(), name="portal-logout"),
]
