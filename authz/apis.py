"""``POST /oauth2/token``: the RFC 8693 token exchange, a thin view over ``authz.services``."""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import DatabaseError, InterfaceError
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import FormParser, JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from authz import decisions
from authz.errors import (
    INVALID_REQUEST,
    TEMPORARILY_UNAVAILABLE,
    UNAVAILABLE_RETRY_AFTER,
    ExchangeError,
    retry_after_seconds,
)
from authz.exchange_request import exchange_request_parse
from authz.rfc8693 import ACCESS_TOKEN_TYPE, SUBJECT_TOKEN_TYPES, TOKEN_EXCHANGE
from authz.services import token_exchange
from authz.throttling import AddressRateThrottle, PrincipalRateThrottle
from lib.strict_json import DuplicateMember, unique_members

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

logger = logging.getLogger(__name__)


class StrictJSONParser(JSONParser):
    """JSON bodies with the form body's rules: a field given twice is refused, not silently the last."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return json.loads(stream.read(), object_pairs_hook=unique_members)
        except DuplicateMember:
            raise ExchangeError(INVALID_REQUEST, "a field is repeated", reason="request.repeated") from None
        except (ValueError, RecursionError):
            raise exceptions.ParseError() from None


class JsonOnlyNegotiation(DefaultContentNegotiation):
    """Every answer of the token endpoint is JSON, whatever Accept or ?format= say (RFC 6749 §5)."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class TokenExchangeInputSerializer(serializers.Serializer):
    """The request, for the OpenAPI document (parsing is done by ``exchange_request_parse``)."""

    grant_type = serializers.ChoiceField(choices=[TOKEN_EXCHANGE])
    subject_token = serializers.CharField(help_text="The Entra ID access token.")
    subject_token_type = serializers.ChoiceField(choices=list(SUBJECT_TOKEN_TYPES))
    audience = serializers.CharField(
        required=False, help_text="A registered downstream service; required unless a default is set."
    )
    resource = serializers.CharField(required=False, help_text="A synonym of audience (RFC 8707).")
    scope = serializers.CharField(
        required=False, help_text="Space-separated permission codes: narrows the token (down-scoping)."
    )
    tenant = serializers.CharField(
        required=False, help_text="Tenant slug; required when the caller has access to several tenants."
    )
    # RFC 6749 §3.1: a parameter sent without a value is treated as omitted, so "" is accepted too.
    requested_token_type = serializers.ChoiceField(
        required=False, allow_blank=True, choices=[ACCESS_TOKEN_TYPE]
    )


class TokenExchangeOutputSerializer(serializers.Serializer):
    access_token = serializers.CharField()
    issued_token_type = serializers.CharField()
    token_type = serializers.CharField()
    expires_in = serializers.IntegerField()
    scope = serializers.CharField()


class OAuthErrorSerializer(serializers.Serializer):
    error = serializers.CharField()
    error_description = serializers.CharField()


class TokenExchangeApi(APIView):
    """RFC 8693 token exchange: an Entra access token for a short-lived token of ours."""

    authentication_classes: list = []
    permission_classes: list = []
    parser_classes = [FormParser, StrictJSONParser]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = JsonOnlyNegotiation
    throttle_classes = [AddressRateThrottle]
    principal_throttle_class = PrincipalRateThrottle

    @extend_schema(
        operation_id="token_exchange",
        request={
            "application/x-www-form-urlencoded": TokenExchangeInputSerializer,
            "application/json": TokenExchangeInputSerializer,
        },
        responses={
            200: TokenExchangeOutputSerializer,
            400: OpenApiResponse(OAuthErrorSerializer, description="RFC 6749 §5.2 error"),
            405: OpenApiResponse(OAuthErrorSerializer, description="Only POST is allowed"),
            429: OpenApiResponse(OAuthErrorSerializer, description="Too many requests (Retry-After)"),
            503: OpenApiResponse(OAuthErrorSerializer, description="Temporarily unavailable"),
        },
        auth=[],
    )
    def post(self, request):
        exchange_request = exchange_request_parse(
            data=_request_fields(request),
            default_audience=settings.TOKEN_DEFAULT_AUDIENCE,
        )
        result = token_exchange(
            request=exchange_request, principal_throttle=self.principal_throttle_class().wait_for
        )
        return Response(
            {
                "access_token": result.access_token,
                "issued_token_type": result.issued_token_type,
                "token_type": "Bearer",
                "expires_in": result.expires_in,
                "scope": result.scope,
            }
        )

    def get_exception_handler(self):
        return exchange_exception_handler

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        for name, value in NO_STORE.items():
            response.headers[name] = value
        return response


def _request_fields(request) -> dict[str, list[str]]:
    """Every field of a form or JSON body as a list of strings (a list flags a repeated field)."""
    try:
        data = request.data
    except (RequestDataTooBig, SuspiciousOperation):
        raise ExchangeError(
            INVALID_REQUEST, "the request body is too large", reason="request.too_large"
        ) from None
    if hasattr(data, "getlist"):
        return {key: data.getlist(key) for key in data}
    if not isinstance(data, dict):
        raise ExchangeError(INVALID_REQUEST, "the body must be a JSON object", reason="request.malformed")
    fields: dict[str, list[str]] = {}
    for key, value in data.items():
        if not isinstance(value, str):
            raise ExchangeError(
                INVALID_REQUEST, f"the field '{_safe_name(key)}' must be a string", reason="request.malformed"
            )
        fields[key] = [value]
    return fields


def _safe_name(key: str) -> str:
    return key[:40] if key.isascii() and key.isprintable() else "?"


def exchange_exception_handler(exc, context):
    """Render every error of the token endpoint in the RFC 6749 §5.2 shape, never a 5xx for input."""
    if isinstance(exc, ExchangeError):
        error = exc
    elif isinstance(exc, exceptions.Throttled):
        error = ExchangeError(
            INVALID_REQUEST,
            "too many requests from this address; retry later",
            reason="throttled.address",
            status=429,
            retry_after=retry_after_seconds(exc.wait),
        )
    elif isinstance(exc, exceptions.MethodNotAllowed):
        error = ExchangeError(INVALID_REQUEST, "use POST", reason="request.method", status=405)
    elif isinstance(exc, exceptions.UnsupportedMediaType):
        error = ExchangeError(
            INVALID_REQUEST,
            "send application/x-www-form-urlencoded or application/json",
            reason="request.media_type",
        )
    elif isinstance(exc, exceptions.ParseError | RequestDataTooBig | SuspiciousOperation):
        error = ExchangeError(INVALID_REQUEST, "the request body is malformed", reason="request.malformed")
    elif isinstance(exc, DatabaseError | InterfaceError):
        # An outage, not the client's fault: 503 so clients retry and balancers see it. token_exchange
        # has logged the decision record; operators get the error here (it never holds the token).
        logger.error(
            "token exchange: the database failed (%s); answered 503", type(exc).__name__, exc_info=exc
        )
        error = ExchangeError(
            TEMPORARILY_UNAVAILABLE,
            "the service is temporarily unavailable; retry later",
            reason="database.unavailable",
            status=503,
            retry_after=UNAVAILABLE_RETRY_AFTER,
        )
        error.logged = True
    elif isinstance(exc, exceptions.APIException):
        # Anything else DRF refuses is still the client's doing: a 4xx in the same shape.
        error = ExchangeError(
            INVALID_REQUEST,
            "the request was refused",
            reason=f"request.{exc.default_code}",
            status=exc.status_code if 400 <= exc.status_code < 500 else 400,
        )
    else:
        return None
    if not error.logged:
        decisions.log(decisions.DecisionRecord(reason=error.reason))
    headers = {}  # Cache-Control: no-store is added by finalize_response, as on every answer
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    if error.status == 405:
        headers["Allow"] = "POST, OPTIONS"
    return Response(error.as_body(), status=error.status, headers=headers)
