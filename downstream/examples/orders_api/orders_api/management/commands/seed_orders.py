"""Create a few demo orders per tenant: ``manage.py seed_orders acme globex [--count 3]``."""

from django.core.management.base import BaseCommand

from orders_api.services import orders_seed


class Command(BaseCommand):
    help = "Create demo orders <TENANT>-1001… for each tenant slug given (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("tenants", nargs="+", metavar="TENANT")
        parser.add_argument("--count", type=int, default=3)

    def handle(self, *args, tenants: list[str], count: int, **options):
        for tenant in tenants:
            created = orders_seed(tenant=tenant, count=count)
            self.stdout.write(f"{tenant}: {created} new orders")
