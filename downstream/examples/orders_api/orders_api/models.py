"""Orders, each belonging to one tenant of the issuer's (the token's ``tenant`` claim)."""

from django.db import models
from django.utils import timezone


class OrderQuerySet(models.QuerySet):
    def of_tenant(self, tenant: str) -> "OrderQuerySet":
        return self.filter(tenant=tenant)


class Order(models.Model):
    PENDING, APPROVED = "pending", "approved"

    tenant = models.CharField(max_length=100)
    number = models.CharField(max_length=32)
    customer = models.CharField(max_length=200)
    total = models.DecimalField(max_digits=12, decimal_places=2)
    status = models.CharField(
        max_length=16, choices=[(PENDING, "Pending"), (APPROVED, "Approved")], default=PENDING
    )
    approved_by = models.CharField(max_length=200, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = OrderQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "number"], name="order_number_per_tenant")]
        ordering = ["number"]

    def __str__(self) -> str:
        return f"{self.tenant}/{self.number}"
