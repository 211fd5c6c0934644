"""issuer_verify.django: stateless bearer authentication and scope/role permissions for DRF views."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from issuer_verify import Claims
from issuer_verify.django import (
    HasRole,
    HasScope,
    IssuerTokenAuthentication,
    RequireRoles,
    RequireScopes,
    TokenPrincipal,
    verifier,
)
from tests.support.fake_issuer import AUDIENCE, DOWN


class OrdersApi(APIView):
    authentication_classes = [IssuerTokenAuthentication]
    permission_classes = [RequireScopes("orders.read")]

    def get(self, request):
        return Response(
            {
                "tenant": request.auth.tenant,
                "user": str(request.user),
                "pk": request.user.pk,
                "principal": isinstance(request.user, TokenPrincipal),
                "claims": isinstance(request.auth, Claims),
                "authenticated": request.user.is_authenticated,
            }
        )


class ApproveApi(APIView):
    authentication_classes = [IssuerTokenAuthentication]
    permission_classes = [HasScope]
    required_scopes = ["orders.read", "orders.approve"]

    def post(self, request):
        return Response({"approved": True})


class AuditApi(APIView):
    authentication_classes = [IssuerTokenAuthentication]
    permission_classes = [RequireScopes("orders.read") & RequireRoles("auditor")]

    def get(self, request):
        return Response({"audited": True})


class ForgotItsScopesApi(APIView):
    authentication_classes = [IssuerTokenAuthentication]
    permission_classes = [HasScope]

    def get(self, request):
        return Response({})


@pytest.fixture
def configured(settings, fake_issuer):
    settings.ISSUER_VERIFY = {"ISSUER": fake_issuer.url, "AUDIENCE": AUDIENCE}
    return settings


def call(
    view: type[APIView], token: str | None = None, *, method: str = "get", authorization: str | None = None
):
    factory = APIRequestFactory()
    headers = {}
    if authorization is not None:
        headers["HTTP_AUTHORIZATION"] = authorization
    elif token is not None:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    request = getattr(factory, method)("/", **headers)
    response = view.as_view()(request)
    response.render()
    return response


def test_a_valid_token_authenticates_a_principal_without_a_database_user(configured, fake_issuer):
    response = call(OrdersApi, fake_issuer.mint(sub="p-42", tenant="globex"))
    assert response.status_code == 200
    assert response.data == {
        "tenant": "globex",
        "user": "p-42@globex",
        "pk": "p-42",
        "principal": True,
        "claims": True,
        "authenticated": True,
    }


def test_no_token_is_a_401_with_a_bearer_challenge_and_no_error_code(configured):
    response = call(OrdersApi)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == f'Bearer realm="{AUDIENCE}"'


def test_another_scheme_is_not_ours_and_reads_as_no_token(configured):
    response = call(OrdersApi, authorization="Basic dXNlcjpwYXNz")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == f'Bearer realm="{AUDIENCE}"'


@pytest.mark.parametrize(
    ("claims", "description"),
    [
        ({"aud": "api://billing"}, "the token is meant for another audience"),
        ({"exp": 1_000_000_000}, "the token has expired"),
        ({"iss": "https://elsewhere.example.com"}, "the token is from another issuer"),
    ],
)
def test_a_refused_token_is_a_401_invalid_token(configured, fake_issuer, claims, description):
    response = call(OrdersApi, fake_issuer.mint(**claims))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == (
        f'Bearer realm="{AUDIENCE}", error="invalid_token", error_description="{description}"'
    )
    assert response.data["detail"] == description


@pytest.mark.parametrize("authorization", ["Bearer", "Bearer ", "Bearer a b", "bearer é", "Bearer a\tb"])
def test_a_malformed_bearer_header_is_a_401_invalid_token(configured, authorization):
    response = call(OrdersApi, authorization=authorization)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response["WWW-Authenticate"]


def test_the_scheme_is_case_insensitive(configured, fake_issuer):
    assert call(OrdersApi, authorization=f"bearer {fake_issuer.mint()}").status_code == 200


def test_a_missing_scope_is_a_403_insufficient_scope_naming_the_scopes_needed(configured, fake_issuer):
    response = call(ApproveApi, fake_issuer.mint(scope="orders.read"), method="post")
    assert response.status_code == 403
    assert response["WWW-Authenticate"] == (
        f'Bearer realm="{AUDIENCE}", error="insufficient_scope", '
        'error_description="the token lacks a scope this request needs", scope="orders.read orders.approve"'
    )
    assert (
        call(ApproveApi, fake_issuer.mint(scope="orders.read orders.approve"), method="post").status_code
        == 200
    )


def test_roles_are_required_with_a_plain_403_and_compose_with_scopes(configured, fake_issuer):
    refused = call(AuditApi, fake_issuer.mint(roles=["viewer"]))
    assert refused.status_code == 403
    assert "WWW-Authenticate" not in refused
    assert call(AuditApi, fake_issuer.mint(roles=["viewer", "auditor"])).status_code == 200


def test_a_view_that_names_no_scopes_is_a_configuration_error(configured, fake_issuer):
    with pytest.raises(ImproperlyConfigured, match="required_scopes"):
        call(ForgotItsScopesApi, fake_issuer.mint())


def test_unavailable_keys_are_a_503_so_clients_keep_their_tokens(configured, fake_issuer):
    fake_issuer.mode = DOWN
    response = call(OrdersApi, fake_issuer.mint())
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.data["detail"].code == "temporarily_unavailable"


def test_the_realm_and_verifier_options_come_from_settings(settings, fake_issuer):
    settings.ISSUER_VERIFY = {
        "ISSUER": fake_issuer.url,
        "AUDIENCE": AUDIENCE,
        "REALM": "orders",
        "LEEWAY": 5,
        "MAX_CACHE_AGE": 120,
    }
    assert call(OrdersApi)["WWW-Authenticate"] == 'Bearer realm="orders"'
    assert verifier().leeway == 5 and verifier().jwks.max_cache_age == 120


@pytest.mark.parametrize(
    ("value", "named"),
    [
        (None, "ISSUER_VERIFY"),
        ({"AUDIENCE": AUDIENCE}, '"ISSUER"'),
        ({"ISSUER": "https://issuer.example.com"}, '"AUDIENCE"'),
        ({"ISSUER": "https://issuer.example.com", "AUDIENCE": AUDIENCE, "LEEWAY": 600}, "leeway"),
        ({"ISSUER": "https://issuer.example.com", "AUDIENCE": AUDIENCE, "ISUER": "x"}, "ISUER"),
        ({"ISSUER": "http://issuer.example.com", "AUDIENCE": AUDIENCE}, "https"),
        ({"ISSUER": "https://issuer.example.com", "AUDIENCE": AUDIENCE, "REALM": 'a"b'}, "REALM"),
    ],
)
def test_a_bad_configuration_names_the_setting(settings, value, named):
    if value is None:
        del settings.ISSUER_VERIFY
    else:
        settings.ISSUER_VERIFY = value
    with pytest.raises(ImproperlyConfigured, match=named):
        verifier()


def test_permission_factories_refuse_what_is_not_a_scope_or_role():
    for bad in [(), ("",), ('a"b',), ("a b",)]:
        with pytest.raises(ValueError):
            RequireScopes(*bad)
    with pytest.raises(ValueError):
        RequireRoles()
    assert issubclass(RequireScopes("orders.read"), HasScope)
    assert issubclass(RequireRoles("auditor"), HasRole)
