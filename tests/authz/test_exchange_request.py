"""The exchange request's fields are checked before any token is looked at."""

import pytest

from authz.errors import ExchangeError
from authz.exchange_request import exchange_request_parse
from authz.rfc8693 import ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE, TOKEN_EXCHANGE

TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"


def fields(**overrides):
    data = {
        "grant_type": [TOKEN_EXCHANGE],
        "subject_token": [TOKEN],
        "subject_token_type": [ACCESS_TOKEN_TYPE],
        "audience": ["api://orders"],
    }
    for name, value in overrides.items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value if isinstance(value, list) else [value]
    return data


def refused(data, default_audience=None):
    with pytest.raises(ExchangeError) as caught:
        exchange_request_parse(data=data, default_audience=default_audience)
    assert TOKEN not in caught.value.description
    return caught.value.error, caught.value.reason


def test_it_accepts_a_minimal_request():
    parsed = exchange_request_parse(data=fields(), default_audience=None)
    assert parsed.subject_token == TOKEN
    assert parsed.audience == "api://orders"
    assert parsed.scope is None
    assert parsed.tenant is None


def test_it_accepts_the_jwt_token_type_and_resource_as_audience():
    parsed = exchange_request_parse(
        data=fields(subject_token_type=JWT_TOKEN_TYPE, audience=None, resource="api://orders"),
        default_audience=None,
    )
    assert parsed.audience == "api://orders"


def test_it_uses_the_default_audience_when_none_is_given():
    parsed = exchange_request_parse(data=fields(audience=None), default_audience="api://default")
    assert parsed.audience == "api://default"


def test_it_parses_scope_and_tenant():
    parsed = exchange_request_parse(
        data=fields(scope="orders.write orders.read orders.read", tenant="acme"), default_audience=None
    )
    assert parsed.scope == ("orders.read", "orders.write")
    assert parsed.tenant == "acme"


def test_it_ignores_unknown_fields():
    parsed = exchange_request_parse(data=fields(client_secret="ignored"), default_audience=None)
    assert parsed.audience == "api://orders"


@pytest.mark.parametrize(
    ("overrides", "error", "reason"),
    [
        ({"grant_type": None}, "invalid_request", "request.grant_type"),
        ({"grant_type": "client_credentials"}, "unsupported_grant_type", "request.grant_type"),
        ({"grant_type": "authorization_code"}, "unsupported_grant_type", "request.grant_type"),
        ({"subject_token": None}, "invalid_request", "request.subject_token"),
        ({"subject_token": ""}, "invalid_request", "request.subject_token"),
        ({"subject_token": "a" * (16 * 1024 + 1)}, "invalid_request", "request.too_long"),
        ({"subject_token": "not a token"}, "invalid_request", "subject_token.malformed"),
        ({"subject_token": [TOKEN, TOKEN]}, "invalid_request", "request.repeated"),
        ({"subject_token_type": None}, "invalid_request", "request.subject_token_type"),
        (
            {"subject_token_type": "urn:ietf:params:oauth:token-type:id_token"},
            "invalid_request",
            "request.subject_token_type",
        ),
        (
            {"requested_token_type": "urn:ietf:params:oauth:token-type:refresh_token"},
            "invalid_request",
            "request.requested_token_type",
        ),
        (
            {"actor_token": TOKEN, "actor_token_type": ACCESS_TOKEN_TYPE},
            "invalid_request",
            "request.actor_token",
        ),
        ({"audience": None}, "invalid_request", "request.audience"),
        ({"audience": ["api://a", "api://b"]}, "invalid_target", "target.many"),
        ({"resource": "api://other"}, "invalid_target", "target.conflict"),
        ({"audience": "api://with space"}, "invalid_target", "audience.unknown"),
        ({"scope": "orders.read  orders.write"}, "invalid_scope", "scope.malformed"),
        ({"scope": 'orders."read'}, "invalid_scope", "scope.malformed"),
        ({"tenant": "../acme"}, "invalid_request", "request.tenant"),
        ({"tenant": "x" * 2000}, "invalid_request", "request.too_long"),
    ],
)
def test_it_refuses_a_bad_request_with_the_rfc_error(overrides, error, reason):
    assert refused(fields(**overrides)) == (error, reason)


def test_an_unknown_grant_type_wins_over_other_missing_fields():
    assert refused({"grant_type": ["password"]}) == ("unsupported_grant_type", "request.grant_type")
