"""The HTTP API: parse, call one service with the token's tenant, render. Scopes guard each view."""

from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from issuer_verify.django import RequireScopes, request_claims
from orders_api import services


class OrderSerializer(serializers.Serializer):
    number = serializers.CharField()
    customer = serializers.CharField()
    total = serializers.DecimalField(max_digits=12, decimal_places=2)
    status = serializers.CharField()
    approved_by = serializers.CharField()


class OrderListApi(APIView):
    permission_classes = [RequireScopes("orders.read")]

    def get(self, request: Request) -> Response:
        tenant = request_claims(request).tenant
        orders = services.order_list(tenant=tenant)
        return Response({"tenant": tenant, "orders": OrderSerializer(orders, many=True).data})


class OrderDetailApi(APIView):
    permission_classes = [RequireScopes("orders.read")]

    def get(self, request: Request, number: str) -> Response:
        try:
            order = services.order_get(tenant=request_claims(request).tenant, number=number)
        except services.OrderNotFound:
            raise NotFound("no such order") from None
        return Response(OrderSerializer(order).data)


class OrderApproveApi(APIView):
    permission_classes = [RequireScopes("orders.approve")]

    def post(self, request: Request, number: str) -> Response:
        claims = request_claims(request)
        try:
            order = services.order_approve(tenant=claims.tenant, number=number, approver=claims.subject)
        except services.OrderNotFound:
            raise NotFound("no such order") from None
        except services.OrderAlreadyApproved:
            return Response({"detail": "the order is already approved"}, status=status.HTTP_409_CONFLICT)
        return Response(OrderSerializer(order).data)


class HealthApi(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})
