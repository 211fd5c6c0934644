"""The orders use cases. Every one takes the caller's tenant and reads or writes only its rows:
isolation is a parameter that cannot be left out, not a filter a view might forget."""

from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from orders_api.models import Order


class OrderNotFound(Exception):
    """No such order in the caller's tenant (another tenant's order is not found, either)."""


class OrderAlreadyApproved(Exception):
    pass


def order_list(*, tenant: str) -> list[Order]:
    return list(Order.objects.of_tenant(tenant))


def order_get(*, tenant: str, number: str) -> Order:
    order = Order.objects.of_tenant(tenant).filter(number=number).first()
    if order is None:
        raise OrderNotFound(number)
    return order


def order_approve(*, tenant: str, number: str, approver: str) -> Order:
    with transaction.atomic():
        order = Order.objects.of_tenant(tenant).select_for_update().filter(number=number).first()
        if order is None:
            raise OrderNotFound(number)
        if order.status == Order.APPROVED:
            raise OrderAlreadyApproved(number)
        order.status = Order.APPROVED
        order.approved_by = approver
        order.approved_at = timezone.now()
        order.save(update_fields=["status", "approved_by", "approved_at"])
    return order


def orders_seed(*, tenant: str, count: int) -> int:
    """Demo orders ``<TENANT>-1001`` … for ``tenant``; returns how many were new."""
    created = 0
    for index in range(count):
        _order, new = Order.objects.get_or_create(
            tenant=tenant,
            number=f"{tenant.upper()}-{1001 + index}",
            defaults={"customer": f"Customer {index + 1} of {tenant}", "total": Decimal(100 + 25 * index)},
        )
        created += new
    return created
