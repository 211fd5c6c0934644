"""URLs of the keys app: the published JWKS."""

from django.urls import path

from keys import views

urlpatterns = [
    path(".well-known/jwks.json", views.jwks, name="jwks"),
]
