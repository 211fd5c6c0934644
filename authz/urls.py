from django.urls import path

from authz.apis import TokenExchangeApi

urlpatterns = [
    path("oauth2/token", TokenExchangeApi.as_view(), name="token-exchange"),
]
